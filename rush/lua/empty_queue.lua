-- empty_queue: move every queued task to failed with a condition, in one step.
--
-- KEYS[1]    queued                        (list)
-- KEYS[2]    failed                        (set)
-- KEYS[3]    the network's epoch           (string)
-- ARGV[1]    pickled condition
-- ARGV[2]    task hash prefix
-- ARGV[3]    pub/sub channel to notify
-- ARGV[4]    the epoch the controller knows
-- Returns the moved keys, or NETWORK_LOST.

if redis.call("GET", KEYS[3]) ~= ARGV[4] then
  return network_lost()
end
local keys = redis.call("LRANGE", KEYS[1], 0, -1)
fail_keys(KEYS[2], ARGV[2], keys, ARGV[1], nil)
redis.call("DEL", KEYS[1])
if #keys > 0 then
  redis.call("PUBLISH", ARGV[3], "tasks")
end
return keys
