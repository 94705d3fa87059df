-- stop_worker: mark a running worker killed or lost and fail its running and pending
-- tasks, in one step. Idempotent: a worker that is no longer "running" is left alone,
-- so two sweeps racing (or a sweep racing the worker's own end) change it once.
-- Only this worker's tasks are touched: its running set may still hold keys another
-- writer moved on (finished, or taken by another worker), so a key fails only while
-- it is running and its hash names this worker.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    worker incarnations           (hash worker_id -> token)
-- KEYS[3]    running                       (set)
-- KEYS[4]    failed                        (set)
-- KEYS[5]    the worker's pending list     (list)
-- KEYS[6]    the worker's running set      (set)
-- ARGV[1]    worker id
-- ARGV[2]    incarnation to stop, or "" for whichever runs (a controller's kill or sweep)
-- ARGV[3]    the worker state "running"
-- ARGV[4]    new state: "killed" or "lost"
-- ARGV[5]    pickled condition stored in each failed task
-- ARGV[6]    task hash prefix
-- ARGV[7]    pub/sub channel to notify
-- Returns the failed keys, or nil when the worker (in that incarnation) was not running.

local worker_id, task_prefix = ARGV[1], ARGV[6]
if redis.call("HGET", KEYS[1], worker_id) ~= ARGV[3]
    or (ARGV[2] ~= "" and redis.call("HGET", KEYS[2], worker_id) ~= ARGV[2]) then
  return nil
end
redis.call("HSET", KEYS[1], worker_id, ARGV[4])
local failed = {}
for _, key in ipairs(redis.call("SMEMBERS", KEYS[6])) do
  if redis.call("HGET", task_prefix .. key, "worker_id") == worker_id
      and redis.call("SREM", KEYS[3], key) == 1 then
    failed[#failed + 1] = key
  end
end
for _, key in ipairs(redis.call("LRANGE", KEYS[5], 0, -1)) do
  failed[#failed + 1] = key
end
fail_keys(KEYS[4], task_prefix, failed, ARGV[5], worker_id)
redis.call("DEL", KEYS[5], KEYS[6])
redis.call("PUBLISH", ARGV[7], "workers")
return failed
