-- set_worker_state: change a worker's state only if it is still in the expected one
-- (first writer wins: a worker ending normally cannot overwrite "killed" or "lost").
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- ARGV[1]    worker id
-- ARGV[2]    expected current state
-- ARGV[3]    new state
-- ARGV[4]    pub/sub channel to notify
-- Returns 1 if the state changed, else 0.

if redis.call("HGET", KEYS[1], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
redis.call("PUBLISH", ARGV[4], "workers")
return 1
