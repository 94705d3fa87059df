-- claim_task: mark the next task of a source list running for a worker, in one step.
-- The source is the queue (pop_task's fast path: the worker's own queue of priority tasks
-- is served first) or the worker's pending list (second step of a blocking pop: BLMOVE
-- moved a key from the queue there). If the worker was stopped meanwhile (its kill sweep
-- ran before the BLMOVE landed), a pending key goes back to the head of the queue: it
-- never started, and no task is lost.
-- Task control, read with the requested fields: a task with "max_retries" counts this
-- attempt in "attempts"; a task with a "timeout" gets its deadline (Redis time + timeout)
-- in the worker's deadlines. When there is no task, the reply says whether the workers
-- were told to leave once the queue is empty (terminate-on-idle flag).
--
-- KEYS[1]    source: queued or the worker's pending list   (list)
-- KEYS[2]    running                       (set)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    queued                        (list)
-- KEYS[5]    workers told to terminate     (set)
-- KEYS[6]    the worker's running set      (set)
-- KEYS[7]    the worker's own queue        (list)
-- KEYS[8]    tasks in own queues           (set)
-- KEYS[9]    the worker's deadlines        (zset task key -> deadline)
-- KEYS[10]   terminate-on-idle flag        (string)
-- ARGV[1]    worker id
-- ARGV[2]    the worker state "running"
-- ARGV[3]    task hash prefix
-- ARGV[4..]  fields to return
-- Returns {terminate, {key, values...}}, {terminate, {}, idle} when there is no task (idle
-- 1: the terminate-on-idle flag is set), or WORKER_STOPPED.

local worker_id = ARGV[1]
if not worker_in(KEYS[3], worker_id, ARGV[2]) then
  if KEYS[1] ~= KEYS[4] then
    local key = redis.call("LPOP", KEYS[1])
    if key then
      redis.call("LPUSH", KEYS[4], key)
    end
  end
  return worker_stopped()
end
local terminate = terminate_flag(KEYS[5], worker_id)
local key = false
if KEYS[1] == KEYS[4] then
  key = redis.call("LPOP", KEYS[7])
  if key then
    redis.call("SREM", KEYS[8], key)
  end
end
if not key then
  key = redis.call("LPOP", KEYS[1])
end
if not key then
  return {terminate, {}, redis.call("EXISTS", KEYS[10])}
end
local hash = ARGV[3] .. key
redis.call("SADD", KEYS[2], key)
redis.call("SADD", KEYS[6], key)
redis.call("HSET", hash, "worker_id", worker_id)
local got = redis.call("HMGET", hash, "timeout", "max_retries", unpack(ARGV, 4))
if got[2] then
  local attempts = redis.call("HINCRBY", hash, "attempts", 1)
  for i = 3, #got do
    if ARGV[i + 1] == "attempts" then
      got[i] = attempts
    end
  end
end
if got[1] then
  redis.call("ZADD", KEYS[9], string.format("%.6f", now() + tonumber(got[1])), key)
end
local task = {key}
for i = 3, #got do
  task[#task + 1] = got[i]
end
return {terminate, task}
