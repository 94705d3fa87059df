-- stop_worker: mark a running worker killed or lost (or terminated, when it left its
-- loop holding tasks) and settle everything it leaves, in one step: each of its running
-- and pending tasks fails, or goes back to the queue while it has retries left
-- (settle_plan); the tasks waiting in its own queue go to the shared queue. Idempotent:
-- a worker that is no longer "running" (in the given incarnation) is left alone, so two
-- sweeps racing (or a sweep racing the worker's own end) change it once. Only this
-- worker's tasks are touched: its running set may still hold keys another writer moved
-- on (finished, or taken by another worker), so a key is settled only while it runs on
-- this worker (runs_on).
-- With a timed-out task (ARGV[7]) the worker is stopped only if that task still runs on it
-- past its deadline (Redis time, as claim_task set it), and that task gets its own
-- condition (variant "t"); a deadline entry of a task that no longer runs on the worker
-- is dropped.
-- A failing task needs its condition signed for it (see settle_plan in _lib): when one is
-- missing the script changes nothing and names them; the caller signs them and calls again.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    worker incarnations           (hash worker_id -> token)
-- KEYS[3]    running                       (set)
-- KEYS[4]    failed                        (set)
-- KEYS[5]    the worker's pending list     (list)
-- KEYS[6]    the worker's running set      (set)
-- KEYS[7]    queued                        (list)
-- KEYS[8]    the worker's own queue        (list)
-- KEYS[9]    tasks in own queues           (set)
-- KEYS[10]   the worker's deadlines        (zset task key -> deadline)
-- ARGV[1]    worker id
-- ARGV[2]    incarnation to stop, or "" for whichever runs (a controller's kill or sweep)
-- ARGV[3]    the worker state "running"
-- ARGV[4]    new state: "killed", "lost" or "terminated"
-- ARGV[5]    task hash prefix
-- ARGV[6]    pub/sub channel to notify
-- ARGV[7]    key of a timed-out task, or "" for none
-- ARGV[8..]  signed conditions: per task its key, the spec of its condition and the pickle
-- Returns {failed keys, requeued keys, {}}; {{}, {}, {key, spec, ...}} when conditions are
-- missing (nothing changed); or nil when nothing changed (the worker was not running, or
-- the timed-out task is not past its deadline on it).

local worker_id, task_prefix, timed_out = ARGV[1], ARGV[5], ARGV[7]
if redis.call("HGET", KEYS[1], worker_id) ~= ARGV[3]
    or (ARGV[2] ~= "" and redis.call("HGET", KEYS[2], worker_id) ~= ARGV[2]) then
  return nil
end
if timed_out ~= "" then
  if not runs_on(KEYS[3], task_prefix, timed_out, worker_id) then
    redis.call("ZREM", KEYS[10], timed_out)
    return nil
  end
  local deadline = redis.call("ZSCORE", KEYS[10], timed_out)
  if not deadline or tonumber(deadline) > now() then
    return nil
  end
end
local w = {worker_id, KEYS[5], KEYS[6], KEYS[8], KEYS[10]}
local plans = {}
leaving_plans(w, KEYS[3], task_prefix, timed_out, plans)
local signed = signed_conditions(8)
local missing = missing_conditions(plans, signed)
if #missing > 0 then
  return {{}, {}, missing}
end
local out = {failed = {}, requeued = {}}
stop_apply(w, ARGV[4], plans, signed, {KEYS[1], KEYS[3], KEYS[7], KEYS[4], KEYS[9]}, out)
redis.call("PUBLISH", ARGV[6], "workers")
return {out.failed, out.requeued, {}}
