-- worker_info: every registered worker with its state, in one step.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    the network's epoch           (string)
-- ARGV[1]    the epoch the reader knows, or "" to read whatever is there
-- ARGV[2]    worker registration hash prefix
-- ARGV[3..]  registration fields to return
-- Returns a flat array: per worker, its id, its state and the requested fields; or
-- NETWORK_LOST.

if ARGV[1] ~= "" and redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return network_lost()
end
local out = {}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  out[#out + 1] = states[i]
  out[#out + 1] = states[i + 1]
  local got = redis.call("HMGET", ARGV[2] .. states[i], unpack(ARGV, 3))
  for f = 1, #ARGV - 2 do
    out[#out + 1] = got[f]
  end
end
return out
