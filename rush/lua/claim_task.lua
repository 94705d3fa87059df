-- claim_task: mark the next task running for a worker, in one step. It takes the task
-- from the worker's pending list if one is there, else from the queue (pop_task's fast
-- path). A key reaches the pending list by BLMOVE, the first step of a blocking pop; a
-- BLMOVE sent again after a lost reply may have moved a second key there, which the next
-- claim takes, so no task is stranded. If the worker was stopped meanwhile, its pending
-- keys go back to the head of the queue: they never started, and no task is lost.
--
-- KEYS[1]    the worker's pending list     (list)
-- KEYS[2]    queued                        (list)
-- KEYS[3]    running                       (set)
-- KEYS[4]    worker states                 (hash worker_id -> state)
-- KEYS[5]    worker incarnations           (hash worker_id -> token)
-- KEYS[6]    the network's epoch           (string)
-- KEYS[7]    workers told to terminate     (set)
-- KEYS[8]    the worker's running set      (set)
-- KEYS[9]    the worker's step record      (hash)
-- ARGV[1..5] WRITER (see _lib)
-- ARGV[6]    task hash prefix
-- ARGV[7]    "1": take from the pending list only (the blocking pop's second step)
-- ARGV[8..]  fields to return
-- Returns {terminate, {key, values...}}, {terminate, {}} when there is no task, or
-- WORKER_STOPPED / NETWORK_LOST.

local w = writer(1)
local again = replayed(KEYS[9], w)
if again then
  return again
end
local refused = refusal(KEYS[4], KEYS[5], KEYS[6], w)
if refused then
  if refused.err == "WORKER_STOPPED" then
    local pending = redis.call("LRANGE", KEYS[1], 0, -1)
    for i = #pending, 1, -1 do
      redis.call("LPUSH", KEYS[2], pending[i])
    end
    redis.call("DEL", KEYS[1])
  end
  return refused
end
local key = redis.call("LPOP", KEYS[1])
if not key and ARGV[7] ~= "1" then
  key = redis.call("LPOP", KEYS[2])
end
if not key then
  return recorded(KEYS[9], w, {terminate_flag(KEYS[7], w[1]), {}})
end
local hash = ARGV[6] .. key
redis.call("SADD", KEYS[3], key)
redis.call("SADD", KEYS[8], key)
redis.call("HSET", hash, "worker_id", w[1])
local task = {key}
for i = 8, #ARGV do
  task[#task + 1] = redis.call("HGET", hash, ARGV[i])
end
return recorded(KEYS[9], w, {terminate_flag(KEYS[7], w[1]), task})
