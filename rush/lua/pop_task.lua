-- pop_task: take the oldest queued task and mark it running for a worker, in one step.
-- (The blocking path goes queue -> pending list -> running; see claim_pending.lua.)
--
-- KEYS[1]    queued                        (list)
-- KEYS[2]    running                       (set)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- ARGV[1]    worker id; must be "running"
-- ARGV[2]    task hash prefix (the task's hash is prefix .. key, same hash tag)
-- ARGV[3..]  fields to return
-- Returns {key, values...}, nil when the queue is empty, or the error WORKER_STOPPED.

if redis.call("HGET", KEYS[3], ARGV[1]) ~= "running" then
  return redis.error_reply("WORKER_STOPPED")
end
local key = redis.call("LPOP", KEYS[1])
if not key then
  return nil
end
local hash = ARGV[2] .. key
redis.call("SADD", KEYS[2], key)
redis.call("HSET", hash, "worker_id", ARGV[1])
local out = {key}
for i = 3, #ARGV do
  out[#out + 1] = redis.call("HGET", hash, ARGV[i])
end
return out
