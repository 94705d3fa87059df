-- read_tasks: read the keys of one or more state collections and the requested fields
-- of their hashes, as one consistent snapshot.
--
-- KEYS[1..C] collections                   (list or set)
-- ARGV[1]    C kinds, one letter each: "l" list, "s" set
-- ARGV[2]    start index (lists only)
-- ARGV[3]    stop index (lists only)
-- ARGV[4]    task hash prefix
-- ARGV[5..]  fields
-- Returns {keys, counts, values, vanished}: keys of tasks whose hash exists (flat, all
-- collections), how many of them came from each collection, their field values (flat,
-- F per key) and the keys whose hash has vanished.

local nf = #ARGV - 4
local keys, counts, values, vanished = {}, {}, {}, {}
for c = 1, #KEYS do
  local members
  if string.sub(ARGV[1], c, c) == "l" then
    members = redis.call("LRANGE", KEYS[c], ARGV[2], ARGV[3])
  else
    members = redis.call("SMEMBERS", KEYS[c])
  end
  local count = 0
  for _, key in ipairs(members) do
    local hash = ARGV[4] .. key
    local got = {}
    if nf > 0 then  -- HMGET needs at least one field (fields=[] reads only the keys)
      got = redis.call("HMGET", hash, unpack(ARGV, 5))
    end
    local any = false
    for f = 1, nf do
      if got[f] then any = true end
    end
    if any or redis.call("EXISTS", hash) == 1 then
      keys[#keys + 1] = key
      for f = 1, nf do
        values[#values + 1] = got[f]
      end
      count = count + 1
    else
      vanished[#vanished + 1] = key
    end
  end
  counts[c] = count
end
return {keys, counts, values, vanished}
