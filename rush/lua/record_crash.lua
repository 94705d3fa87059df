-- record_crash: store the JSON record of a worker's crash and append the ERROR record of
-- its log, in one step, and notify. (A script rather than MULTI: a Redis Cluster client
-- cannot put PUBLISH in a transaction.)
--
-- KEYS[1]    crash records                 (hash worker_id -> JSON)
-- KEYS[2]    the worker's log              (list of JSON records)
-- ARGV[1]    worker id
-- ARGV[2]    JSON record of the crash
-- ARGV[3]    JSON log record
-- ARGV[4]    pub/sub channel to notify
-- Returns 1.

redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("RPUSH", KEYS[2], ARGV[3])
redis.call("PUBLISH", ARGV[4], "workers")
return 1
