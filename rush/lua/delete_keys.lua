-- delete_keys: delete the given keys and every key matching the given patterns, in one
-- step (SCAN runs inside the script, so nothing written meanwhile survives half-deleted).
--
-- KEYS[1..]  keys to delete                (any type)
-- ARGV[1..]  SCAN MATCH patterns (glob-escaped, under the network's hash tag)
-- Returns the number of keys deleted.

local deleted = 0
for _, key in ipairs(KEYS) do
  deleted = deleted + redis.call("DEL", key)
end
for _, pattern in ipairs(ARGV) do
  local cursor = "0"
  repeat
    local page = redis.call("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do
      deleted = deleted + redis.call("DEL", key)
    end
  until cursor == "0"
end
return deleted
