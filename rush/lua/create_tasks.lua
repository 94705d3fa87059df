-- create_tasks: create tasks directly in one state, atomically.
-- A task's hash and its place in the state collections appear together or not at all.
-- Re-running the call with the same keys (a client retry) creates nothing twice.
--
-- KEYS[1]    all tasks, creation order     (list)
-- KEYS[2]    target collection             (list: queued, finished | set: running, failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    workers told to terminate     (set)
-- KEYS[5..]  one task hash per task        (hash)
-- ARGV[1]    target kind: "list" or "set"
-- ARGV[2]    worker id that writes, or "" (a controller); the worker must be "running"
-- ARGV[3]    pub/sub channel to notify, or "" for none
-- ARGV[4]    F, the number of fields
-- ARGV[5 .. 4+F]   field names
-- then per task: the public key and F values ("" = field absent)
-- Returns {number of tasks created, 1 if the writing worker was told to terminate else 0}
-- (the flag rides along so a worker's loop needs no extra round trip to read it), or the
-- error WORKER_STOPPED.

local worker_id = ARGV[2]
if worker_id ~= "" and redis.call("HGET", KEYS[3], worker_id) ~= "running" then
  return redis.error_reply("WORKER_STOPPED")
end
local nf = tonumber(ARGV[4])
local at = 5 + nf
local created = 0
for i = 5, #KEYS do
  local key = ARGV[at]
  if redis.call("EXISTS", KEYS[i]) == 0 then
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
    redis.call("RPUSH", KEYS[1], key)
    if ARGV[1] == "list" then
      redis.call("RPUSH", KEYS[2], key)
    else
      redis.call("SADD", KEYS[2], key)
    end
    created = created + 1
  end
  at = at + 1 + nf
end
if ARGV[3] ~= "" and created > 0 then
  redis.call("PUBLISH", ARGV[3], "tasks")
end
local terminate = 0
if worker_id ~= "" then
  terminate = redis.call("SISMEMBER", KEYS[4], worker_id)
end
return {created, terminate}
