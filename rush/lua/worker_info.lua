-- worker_info: every registered worker with its state, in one step; for a sweep for lost
-- workers, also whether each one's heartbeat key exists.
--
-- KEYS[1]    the worker states             (hash worker_id -> state)
-- KEYS[2]    the network's epoch           (string)
-- ARGV[1]    the epoch the reader knows, or "" to read whatever is there
-- ARGV[2]    worker registration hash prefix
-- ARGV[3]    heartbeat key prefix, or "" to leave heartbeat keys out
-- ARGV[4..]  registration fields to return
-- Returns a flat array: per worker, its id, its state, the requested fields and (with a
-- heartbeat key prefix) 1 or 0 for whether its heartbeat key exists; or NETWORK_LOST.

if ARGV[1] ~= "" and redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return network_lost()
end
local out = {}
local beats = ARGV[3]
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  out[#out + 1] = states[i]
  out[#out + 1] = states[i + 1]
  local got = redis.call("HMGET", ARGV[2] .. states[i], unpack(ARGV, 4))
  for f = 1, #ARGV - 3 do
    out[#out + 1] = got[f]
  end
  if beats ~= "" then
    out[#out + 1] = redis.call("EXISTS", beats .. states[i])
  end
end
return out
