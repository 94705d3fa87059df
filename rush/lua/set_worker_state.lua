-- set_worker_state: change a worker's state only if it is still in the expected one
-- (first writer wins: a worker ending normally cannot overwrite "killed" or "lost"). The
-- tasks waiting in its own queue go to the shared queue in the same step: a task never
-- waits for a worker that no longer runs.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    the worker's own queue        (list)
-- KEYS[3]    queued                        (list)
-- KEYS[4]    tasks in own queues           (set)
-- ARGV[1]    worker id
-- ARGV[2]    expected current state
-- ARGV[3]    new state
-- ARGV[4]    pub/sub channel to notify
-- Returns 1 if the state changed, else 0.

if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
release_own_queue(KEYS[2], KEYS[3], KEYS[4])
redis.call("PUBLISH", ARGV[4], "workers")
return 1
