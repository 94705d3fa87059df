-- set_worker_state: change a worker's state only if it is still in the expected one, in
-- the expected incarnation (first writer wins: a worker ending normally cannot overwrite
-- "killed" or "lost", and an old incarnation cannot change a new one).
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    worker incarnations           (hash worker_id -> token)
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
redis.call("PUBLISH", ARGV[5], "workers")
return 1
