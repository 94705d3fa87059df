-- move_tasks: finish or fail running tasks. First writer wins: a key moves only if it
-- is still in the running set; every other key is returned as discarded, but for one
-- whose first field already holds this call's value (the call ran before: a resend).
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    worker incarnations           (hash worker_id -> token)
-- KEYS[5]    the network's epoch           (string)
-- KEYS[6]    workers told to terminate     (set)
-- KEYS[7]    the writing worker's running set (set)
-- ARGV[1..5] WRITER (see _lib)
-- ARGV[6]    destination kind: "list" or "set"
-- ARGV[7]    pub/sub channel to notify
-- ARGV[8]    task hash prefix
-- ARGV[9]    F, the number of fields
-- ARGV[10 .. 9+F]  field names
-- then per task: its public key and F values ("" = field absent)
-- Returns {terminate, keys that were not running (discarded)}, or WORKER_STOPPED /
-- NETWORK_LOST.

local w = writer(1)
local refused = refusal(KEYS[3], KEYS[4], KEYS[5], w)
if refused then
  return refused
end
local nf = tonumber(ARGV[9])
local discarded, moved = move_rows(KEYS[1], KEYS[2], ARGV[6], KEYS[7], ARGV[8], 9, nf,
                                   10 + nf, #ARGV)
if moved > 0 then
  redis.call("PUBLISH", ARGV[7], "tasks")
end
return {terminate_flag(KEYS[6], w[1]), discarded}
