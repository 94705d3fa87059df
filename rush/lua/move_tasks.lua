-- move_tasks: finish or fail running tasks. First writer wins: a key moves only if it
-- is still in the running set; every other key is returned as discarded.
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    workers told to terminate     (set)
-- KEYS[5..]  one task hash per task        (hash)
-- ARGV[1]    destination kind: "list" or "set"
-- ARGV[2]    worker id that writes, or "" (a controller); the worker must be "running"
-- ARGV[3]    pub/sub channel to notify
-- ARGV[4]    F, the number of fields
-- ARGV[5 .. 4+F]   field names
-- then per task: the public key and F values ("" = field absent)
-- Returns {1 if the writing worker was told to terminate else 0, the keys that were not
-- running (discarded)}, or the error WORKER_STOPPED.

local worker_id = ARGV[2]
if worker_id ~= "" and redis.call("HGET", KEYS[3], worker_id) ~= "running" then
  return redis.error_reply("WORKER_STOPPED")
end
local nf = tonumber(ARGV[4])
local at = 5 + nf
local discarded = {}
for i = 5, #KEYS do
  local key = ARGV[at]
  if redis.call("SREM", KEYS[1], key) == 1 then
    local pairs = {}
    for f = 1, nf do
      local value = ARGV[at + f]
      if value ~= "" then
        pairs[#pairs + 1] = ARGV[4 + f]
        pairs[#pairs + 1] = value
      end
    end
    if #pairs > 0 then
      redis.call("HSET", KEYS[i], unpack(pairs))
    end
    if ARGV[1] == "list" then
      redis.call("RPUSH", KEYS[2], key)
    else
      redis.call("SADD", KEYS[2], key)
    end
  else
    discarded[#discarded + 1] = key
  end
  at = at + 1 + nf
end
if #discarded < #KEYS - 4 then
  redis.call("PUBLISH", ARGV[3], "tasks")
end
local terminate = 0
if worker_id ~= "" then
  terminate = redis.call("SISMEMBER", KEYS[4], worker_id)
end
return {terminate, discarded}
