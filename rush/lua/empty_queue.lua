-- empty_queue: move the given tasks that are still queued to failed, each with its
-- condition (a pickle signed for its task), one atomic step per call. The caller reads the
-- queue and sends its keys in order, so each is found at (or near) the head.
--
-- KEYS[1]    queued                        (list)
-- KEYS[2]    failed                        (set)
-- KEYS[3]    the network's epoch           (string)
-- ARGV[1]    task hash prefix
-- ARGV[2]    pub/sub channel to notify
-- ARGV[3]    the epoch the controller knows
-- ARGV[4..]  per task: its key and its signed condition
-- Returns the moved keys, or NETWORK_LOST.

if redis.call("GET", KEYS[3]) ~= ARGV[3] then
  return network_lost()
end
local moved = {}
for i = 4, #ARGV, 2 do
  local key = ARGV[i]
  if redis.call("LREM", KEYS[1], 1, key) == 1 then
    redis.call("SADD", KEYS[2], key)
    redis.call("HSET", ARGV[1] .. key, "condition", ARGV[i + 1])
    moved[#moved + 1] = key
  end
end
if #moved > 0 then
  redis.call("PUBLISH", ARGV[2], "tasks")
end
return moved
