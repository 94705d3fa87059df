-- stop_worker: mark a running worker killed or lost and fail its running and pending
-- tasks, in one step. Idempotent: a worker that is no longer "running" is left alone,
-- so two sweeps racing (or a sweep racing the worker's own end) change it once.
-- Only this worker's tasks are touched.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    running                       (set)
-- KEYS[3]    failed                        (set)
-- KEYS[4]    the worker's pending list     (list)
-- ARGV[1]    worker id
-- ARGV[2]    new state: "killed" or "lost"
-- ARGV[3]    pickled condition stored in each failed task
-- ARGV[4]    task hash prefix
-- ARGV[5]    pub/sub channel to notify
-- Returns the failed keys, or nil when the worker was not running.

if redis.call("HGET", KEYS[1], ARGV[1]) ~= "running" then
  return nil
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
local failed = {}
for _, key in ipairs(redis.call("SMEMBERS", KEYS[2])) do
  if redis.call("HGET", ARGV[4] .. key, "worker_id") == ARGV[1] then
    failed[#failed + 1] = key
  end
end
for _, key in ipairs(redis.call("LRANGE", KEYS[4], 0, -1)) do
  failed[#failed + 1] = key
end
for _, key in ipairs(failed) do
  redis.call("SREM", KEYS[2], key)
  redis.call("SADD", KEYS[3], key)
  redis.call("HSET", ARGV[4] .. key, "condition", ARGV[3], "worker_id", ARGV[1])
end
redis.call("DEL", KEYS[4])
redis.call("PUBLISH", ARGV[5], "workers")
return failed
