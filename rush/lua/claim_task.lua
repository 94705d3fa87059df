-- claim_task: mark the next task running for a worker, in one step. It takes the task
-- from the worker's pending list if one is there, else (unless pending_only) from the
-- worker's own queue of priority tasks, else from the shared queue (pop_task's fast
-- path). A key reaches the pending list by BLMOVE, the first step of a blocking pop; a
-- BLMOVE sent again after a lost reply may have moved a second key there, which the next
-- claim takes, so no task is stranded. If the worker was stopped meanwhile, its pending
-- keys go back to the head of the queue: they never started, and no task is lost.
-- Task control, read with the requested fields: a task with "max_retries" counts this
-- attempt in "attempts"; a task with a "timeout" gets its deadline (Redis time + timeout)
-- in the worker's deadlines. When there is no task, the reply says whether the workers
-- were told to leave once the queue is empty (terminate-on-idle flag).
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
-- KEYS[10]   the worker's own queue        (list)
-- KEYS[11]   tasks in own queues           (set)
-- KEYS[12]   the worker's deadlines        (zset task key -> deadline)
-- KEYS[13]   terminate-on-idle flag        (string)
-- ARGV[1..5] WRITER (see _lib)
-- ARGV[6]    task hash prefix
-- ARGV[7]    "1": take from the pending list only (the blocking pop's second step)
-- ARGV[8..]  fields to return
-- Returns {terminate, {key, values...}}, {terminate, {}, idle} when there is no task
-- (idle 1: the terminate-on-idle flag is set), or WORKER_STOPPED / NETWORK_LOST.

local w = writer(1)
local key = claimed_before(KEYS[9], w)
if key then  -- a resend: the same task, read again (it runs on this worker)
  return {terminate_flag(KEYS[7], w[1]), read_claimed(ARGV[6], key, 8)}
end
local refused = refusal(KEYS[4], KEYS[5], KEYS[6], w)
if refused then
  if refused.err == "WORKER_STOPPED" then
    release_pending(KEYS[1], KEYS[2])
  end
  return refused
end
local terminate = terminate_flag(KEYS[7], w[1])
local task = claim_next({pending = KEYS[1], queued = KEYS[2], running = KEYS[3],
                         own_running = KEYS[8], step = KEYS[9], own_queue = KEYS[10],
                         priority = KEYS[11], deadlines = KEYS[12]},
                        w, ARGV[6], ARGV[7] == "1", 8)
if not task then
  return {terminate, {}, redis.call("EXISTS", KEYS[13])}
end
return {terminate, task}
