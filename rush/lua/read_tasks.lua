-- read_tasks: read the keys of one or more state collections and the requested fields
-- of their hashes, as one consistent snapshot.
--
-- KEYS[1]    the network's epoch           (string)
-- KEYS[2..]  C collections                 (list or set)
-- ARGV[1]    the epoch the reader knows, or "" to read whatever is there
-- ARGV[2]    C kinds, one letter each: "l" list, "s" set
-- ARGV[3]    start index (lists only)
-- ARGV[4]    stop index (lists only)
-- ARGV[5]    task hash prefix
-- ARGV[6..]  fields
-- Returns {keys, counts, values, vanished}: keys of tasks whose hash exists (flat, all
-- collections), how many of them came from each collection, their field values (flat,
-- F per key) and the keys whose hash has vanished; or NETWORK_LOST.

if ARGV[1] ~= "" and redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return network_lost()
end
local nf = #ARGV - 5
local keys, counts, values, vanished = {}, {}, {}, {}
for c = 2, #KEYS do
  local members
  if string.sub(ARGV[2], c - 1, c - 1) == "l" then
    members = redis.call("LRANGE", KEYS[c], ARGV[3], ARGV[4])
  else
    members = redis.call("SMEMBERS", KEYS[c])
  end
  local count = 0
  for _, key in ipairs(members) do
    local hash = ARGV[5] .. key
    local got = {}
    if nf > 0 then  -- HMGET needs at least one field (fields=[] reads only the keys)
      got = redis.call("HMGET", hash, unpack(ARGV, 6))
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
  counts[c - 1] = count
end
return {keys, counts, values, vanished}
