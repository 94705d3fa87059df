-- stop_worker: mark a running worker killed or lost and fail its running and pending
-- tasks, in one step. Idempotent: a worker that is no longer "running" is left alone,
-- so two sweeps racing (or a sweep racing the worker's own end) change it once.
-- Only this worker's tasks are touched: its running set may still hold keys another
-- writer moved on (finished, or taken by another worker), so a key fails only while
-- it is running and its hash names this worker.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    running                       (set)
-- KEYS[3]    failed                        (set)
-- KEYS[4]    the worker's pending list     (list)
-- KEYS[5]    the worker's running set      (set)
-- ARGV[1]    worker id
-- ARGV[2]    the worker state "running"
-- ARGV[3]    new state: "killed" or "lost"
-- ARGV[4]    pickled condition stored in each failed task
-- ARGV[5]    task hash prefix
-- ARGV[6]    pub/sub channel to notify
-- Returns the failed keys, or nil when the worker was not running.

local worker_id, task_prefix = ARGV[1], ARGV[5]
if not worker_in(KEYS[1], worker_id, ARGV[2]) then
  return nil
end
redis.call("HSET", KEYS[1], worker_id, ARGV[3])
local failed = {}
for _, key in ipairs(redis.call("SMEMBERS", KEYS[5])) do
  if redis.call("HGET", task_prefix .. key, "worker_id") == worker_id
      and redis.call("SREM", KEYS[2], key) == 1 then
    failed[#failed + 1] = key
  end
end
for _, key in ipairs(redis.call("LRANGE", KEYS[4], 0, -1)) do
  failed[#failed + 1] = key
end
fail_keys(KEYS[3], task_prefix, failed, ARGV[4], worker_id)
redis.call("DEL", KEYS[4], KEYS[5])
redis.call("PUBLISH", ARGV[6], "workers")
return failed
