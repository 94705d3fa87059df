-- register_worker: record a worker as running in its incarnation, in one step. Refused
-- when the id already runs in another incarnation, or was killed (restart_workers, which
-- gives the id a new incarnation first, is the one way back). With a heartbeat, its key
-- is set here too, so no sweep sees the worker before its first beat.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    worker incarnations           (hash worker_id -> token)
-- KEYS[3]    the worker's registration     (hash)
-- KEYS[4]    the worker's heartbeat key    (string)
-- KEYS[5]    the worker's kill channel     (list)
-- ARGV[1]    worker id
-- ARGV[2]    incarnation
-- ARGV[3]    the worker state "running"
-- ARGV[4]    the worker state "killed"
-- ARGV[5]    heartbeat expiry in ms, or "" without a heartbeat
-- ARGV[6]    pub/sub channel to notify
-- ARGV[7..]  registration fields and values
-- Returns 1, or the error ALREADY_RUNNING / WAS_KILLED.

local state = redis.call("HGET", KEYS[1], ARGV[1])
local current = redis.call("HGET", KEYS[2], ARGV[1])
if state == ARGV[3] and current and current ~= ARGV[2] then
  return redis.error_reply("ALREADY_RUNNING")
end
if state == ARGV[4] then
  return redis.error_reply("WAS_KILLED")
end
redis.call("HSET", KEYS[3], unpack(ARGV, 7))
if ARGV[5] ~= "" then
  redis.call("SET", KEYS[4], ARGV[2], "PX", ARGV[5])
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
-- kill signals sent to earlier incarnations are void now; the terminate flag is kept
-- (a controller may raise it while the worker is still starting)
redis.call("DEL", KEYS[5])
redis.call("PUBLISH", ARGV[6], "workers")
return 1
