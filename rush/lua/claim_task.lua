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
-- ARGV[1]    worker id; must be "running"
-- ARGV[2]    task hash prefix (the task's hash is prefix .. key, same hash tag)
-- ARGV[3..]  fields to return
-- Returns {key, values...}, nil when the source is empty, or the error WORKER_STOPPED.

if redis.call("HGET", KEYS[3], ARGV[1]) ~= "running" then
  if KEYS[1] ~= KEYS[4] then
    local key = redis.call("LPOP", KEYS[1])
    if key then
      redis.call("LPUSH", KEYS[4], key)
    end
  end
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
