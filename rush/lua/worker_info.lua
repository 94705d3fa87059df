-- worker_info: every registered worker with its state, in one step.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- ARGV[1]    worker registration hash prefix
-- ARGV[2..]  registration fields to return
-- Returns a flat array: per worker, its id, its state and the requested fields.

local out = {}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  out[#out + 1] = states[i]
  out[#out + 1] = states[i + 1]
  local got = redis.call("HMGET", ARGV[1] .. states[i], unpack(ARGV, 2))
  for f = 1, #ARGV - 1 do
    out[#out + 1] = got[f]
  end
end
return out
