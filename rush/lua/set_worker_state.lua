-- set_worker_state: change a worker's state only if it is still in the expected one, in
-- the expected incarnation (first writer wins: a worker ending normally cannot overwrite
-- "killed" or "lost", and an old incarnation cannot change a new one). The tasks waiting
-- in its own queue go to the shared queue in the same step: a task never waits for a
-- worker that no longer runs.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    worker incarnations           (hash worker_id -> token)
-- KEYS[3]    the worker's own queue        (list)
-- KEYS[4]    queued                        (list)
-- KEYS[5]    tasks in own queues           (set)
-- ARGV[1]    worker id
-- ARGV[2]    incarnation, or "" for whichever runs
-- ARGV[3]    expected current state
-- ARGV[4]    new state
-- ARGV[5]    pub/sub channel to notify
-- Returns 1 if the state changed, else 0.

if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[3]
    or (ARGV[2] ~= "" and redis.call("HGET", KEYS[2], ARGV[1]) ~= ARGV[2]) then
  return 0
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[4])
release_own_queue(KEYS[3], KEYS[4], KEYS[5])
redis.call("PUBLISH", ARGV[5], "workers")
return 1
