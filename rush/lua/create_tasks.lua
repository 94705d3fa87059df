-- create_tasks: create tasks directly in one state, atomically.
-- A task's hash and its place in the state collections appear together or not at all.
-- Re-running the call with the same keys (a client retry) creates nothing twice.
--
-- KEYS[1]    all tasks, creation order     (list)
-- KEYS[2]    target collection             (list: queued, finished | set: running, failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    worker incarnations           (hash worker_id -> token)
-- KEYS[5]    the network's epoch           (string)
-- KEYS[6]    workers told to terminate     (set)
-- KEYS[7]    the writing worker's running set (set; unused for a controller)
-- ARGV[1..5] WRITER (see _lib; a resent create finds its tasks and skips them)
-- ARGV[6]    target kind: "list", "set", or "running" (a set, and the worker's running
--            set; the task's worker_id field is set to the writing worker)
-- ARGV[7]    pub/sub channel to notify, or "" for none
-- ARGV[8]    task hash prefix
-- ARGV[9]    F, the number of fields
-- ARGV[10 .. 9+F]  field names
-- then per task: its public key and F values ("" = field absent)
-- Returns {terminate, keys that already existed (not written)}, or WORKER_STOPPED /
-- NETWORK_LOST.

local w = writer(1)
local refused = refusal(KEYS[3], KEYS[4], KEYS[5], w)
if refused then
  return refused
end
local nf = tonumber(ARGV[9])
local existing, created = create_rows(KEYS[1], KEYS[2], ARGV[6], KEYS[7], w[1], ARGV[8], 9,
                                      nf, 10 + nf, #ARGV)
if ARGV[7] ~= "" and created > 0 then
  redis.call("PUBLISH", ARGV[7], "tasks")
end
return {terminate_flag(KEYS[6], w[1]), existing}
