-- claim_pending: second step of a blocking pop. BLMOVE put a key from the queue into the
-- worker's pending list; this marks it running. If the worker was stopped meanwhile (its
-- kill sweep ran before the BLMOVE landed), the key goes back to the head of the queue:
-- it never started, and no task is lost.
--
-- KEYS[1]    the worker's pending list     (list)
-- KEYS[2]    running                       (set)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    queued                        (list)
-- ARGV[1]    worker id
-- ARGV[2]    task hash prefix
-- ARGV[3..]  fields to return
-- Returns {key, values...}, nil when pending is empty, or the error WORKER_STOPPED.

local key = redis.call("LPOP", KEYS[1])
if redis.call("HGET", KEYS[3], ARGV[1]) ~= "running" then
  if key then
    redis.call("LPUSH", KEYS[4], key)
  end
  return redis.error_reply("WORKER_STOPPED")
end
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
