-- claim_task: mark the next task of a source list running for a worker, in one step.
-- The source is the queue (pop_task's fast path) or the worker's pending list (second
-- step of a blocking pop: BLMOVE moved a key from the queue there). If the worker was
-- stopped meanwhile (its kill sweep ran before the BLMOVE landed), a pending key goes back
-- to the head of the queue: it never started, and no task is lost.
--
-- KEYS[1]    source: queued or the worker's pending list   (list)
-- KEYS[2]    running                       (set)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    queued                        (list)
-- KEYS[5]    workers told to terminate     (set)
-- KEYS[6]    the worker's running set      (set)
-- ARGV[1]    worker id
-- ARGV[2]    the worker state "running"
-- ARGV[3]    task hash prefix
-- ARGV[4..]  fields to return
-- Returns {terminate, {key, values...}}, {terminate, {}} when the source is empty, or
-- WORKER_STOPPED.

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
local key = redis.call("LPOP", KEYS[1])
if not key then
  return {terminate, {}}
end
local hash = ARGV[3] .. key
redis.call("SADD", KEYS[2], key)
redis.call("SADD", KEYS[6], key)
redis.call("HSET", hash, "worker_id", worker_id)
local task = {key}
for i = 4, #ARGV do
  task[#task + 1] = redis.call("HGET", hash, ARGV[i])
end
return {terminate, task}
