-- sweep_pending: fail tasks left in the pending list of a worker that no longer runs.
-- Closes two narrow windows: a blocking pop (BLMOVE) that lands after the worker was
-- declared lost and the worker dies before claiming the task; and a pop whose reply was
-- lost on a dropped connection, after which the worker ended. Only stopped workers'
-- lists are touched; a running worker's pending task is about to be claimed.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    failed                        (set)
-- ARGV[1]    pending list prefix (the list is prefix .. worker_id, same hash tag)
-- ARGV[2]    pickled condition stored in each failed task
-- ARGV[3]    task hash prefix
-- ARGV[4]    pub/sub channel to notify
-- Returns the failed keys.

local failed = {}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  if states[i + 1] ~= "running" then
    local pending = ARGV[1] .. states[i]
    for _, key in ipairs(redis.call("LRANGE", pending, 0, -1)) do
      redis.call("SADD", KEYS[2], key)
      redis.call("HSET", ARGV[3] .. key, "condition", ARGV[2], "worker_id", states[i])
      failed[#failed + 1] = key
    end
    redis.call("DEL", pending)
  end
end
if #failed > 0 then
  redis.call("PUBLISH", ARGV[4], "tasks")
end
return failed
