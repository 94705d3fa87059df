-- mark_unregistered: record a worker that was stopped before it registered (its process
-- is gone) in a state, in one step, and notify; a worker that did register keeps its
-- record (every write is HSETNX). (A script rather than MULTI: a Redis Cluster client
-- cannot put PUBLISH in a transaction.)
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    the worker's registration     (hash)
-- ARGV[1]    worker id
-- ARGV[2]    the state to record
-- ARGV[3]    pub/sub channel to notify
-- ARGV[4..]  registration fields and values
-- Returns 1 if the state was recorded, 0 if the worker had one.

local recorded = redis.call("HSETNX", KEYS[1], ARGV[1], ARGV[2])
for i = 4, #ARGV, 2 do
  redis.call("HSETNX", KEYS[2], ARGV[i], ARGV[i + 1])
end
redis.call("PUBLISH", ARGV[3], "workers")
return recorded
