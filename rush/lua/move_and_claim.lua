-- move_and_claim: a queue worker's step in one call: finish or fail its running tasks (as
-- move_tasks), then mark its next task running (as claim_task, without pending_only).
-- Both or neither: a worker that no longer runs changes nothing (its pending keys go back
-- to the queue, as in claim_task). A resent call (same step id) changes nothing twice: it
-- gets the task the first run took; when that run took none, the moves find their tasks
-- moved by this very call and the claim runs again.
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    worker incarnations           (hash worker_id -> token)
-- KEYS[5]    the network's epoch           (string)
-- KEYS[6]    workers told to terminate     (set)
-- KEYS[7]    the worker's running set      (set)
-- KEYS[8]    the worker's pending list     (list)
-- KEYS[9]    queued                        (list)
-- KEYS[10]   the worker's step record      (hash)
-- KEYS[11]   the worker's own queue        (list)
-- KEYS[12]   tasks in own queues           (set)
-- KEYS[13]   the worker's deadlines        (zset task key -> deadline)
-- KEYS[14]   terminate-on-idle flag        (string)
-- ARGV[1..5] WRITER (see _lib; the step id is the claim's)
-- ARGV[6]    destination kind: "list" or "set"
-- ARGV[7]    pub/sub channel to notify
-- ARGV[8]    task hash prefix
-- ARGV[9]    F, the number of fields written to the moved tasks
-- ARGV[10 .. 9+F]  field names
-- ARGV[10+F] N, the number of moved tasks
-- then per moved task: its public key and F values ("" = field absent)
-- then the fields to return of the claimed task
-- Returns one flat array (each nested table costs Redis a conversion): {terminate, idle
-- (1: no task and the terminate-on-idle flag is set), D, the D discarded keys (as
-- move_tasks), then the claimed task's key and values (nothing when there is no task)},
-- or WORKER_STOPPED / NETWORK_LOST.

local w = writer(1)
local nf = tonumber(ARGV[9])
local first = 11 + nf
local fields = first + tonumber(ARGV[10 + nf]) * (nf + 1)
local key = claimed_before(KEYS[10], w)
if key then  -- a resend of a call that took a task: all of it ran
  local reply = read_claimed(ARGV[8], key, fields)
  table.insert(reply, 1, 0)
  table.insert(reply, 1, 0)
  table.insert(reply, 1, terminate_flag(KEYS[6], w[1]))
  return reply
end
local refused = refusal(KEYS[3], KEYS[4], KEYS[5], w)
if refused then
  if refused.err == "WORKER_STOPPED" then
    release_pending(KEYS[8], KEYS[9])
  end
  return refused
end
local discarded, moved = move_rows(KEYS[1], KEYS[2], ARGV[6], KEYS[7], ARGV[8], 9, nf,
                                   first, fields - 1)
if moved > 0 then
  redis.call("PUBLISH", ARGV[7], "tasks")
end
local task = claim_next({pending = KEYS[8], queued = KEYS[9], running = KEYS[1],
                         own_running = KEYS[7], step = KEYS[10], own_queue = KEYS[11],
                         priority = KEYS[12], deadlines = KEYS[13]},
                        w, ARGV[8], false, fields)
local reply = {terminate_flag(KEYS[6], w[1]), 0, #discarded}
for i = 1, #discarded do
  reply[#reply + 1] = discarded[i]
end
if not task then
  reply[2] = redis.call("EXISTS", KEYS[14])
  return reply
end
for i = 1, #task do
  reply[#reply + 1] = task[i]
end
return reply
