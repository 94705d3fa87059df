-- create_tasks: create tasks directly in one state, atomically.
-- A task's hash and its place in the state collections appear together or not at all.
-- Re-running the call with the same keys (a client retry) creates nothing twice.
--
-- KEYS[1]    all tasks, creation order     (list)
-- KEYS[2]    target collection             (list: queued, finished | set: running, failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    workers told to terminate     (set)
-- KEYS[5]    the writing worker's running set (set; unused for a controller)
-- ARGV[1]    worker id that writes, or "" (a controller)
-- ARGV[2]    the worker state "running"
-- ARGV[3]    target kind: "list", "set", or "running" (a set, and the worker's running set)
-- ARGV[4]    pub/sub channel to notify, or "" for none
-- ARGV[5]    task hash prefix
-- ARGV[6]    F, the number of fields
-- ARGV[7 .. 6+F]   field names
-- then per task: its public key and F values ("" = field absent)
-- Returns {terminate, keys that already existed (not written)}, or WORKER_STOPPED.

local worker_id, kind = ARGV[1], ARGV[3]
if worker_id ~= "" and not worker_in(KEYS[3], worker_id, ARGV[2]) then
  return worker_stopped()
end
local nf = tonumber(ARGV[6])
local existing, created = {}, 0
for at = 7 + nf, #ARGV, nf + 1 do
  local key = ARGV[at]
  if new_task(KEYS[1], ARGV[5] .. key, key, 6, nf, at) then
    add_to(kind, KEYS[2], key)
    if kind == "running" then
      redis.call("SADD", KEYS[5], key)
    end
    created = created + 1
  else
    existing[#existing + 1] = key
  end
end
if ARGV[4] ~= "" and created > 0 then
  redis.call("PUBLISH", ARGV[4], "tasks")
end
return {terminate_flag(KEYS[4], worker_id), existing}
