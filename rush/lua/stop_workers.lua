-- stop_workers: stop_worker for many workers in one step (a controller's kill, sweep or
-- exit): each of the given workers that runs (in whichever incarnation) becomes killed or
-- lost, and everything it leaves is settled as stop_worker settles it. Workers that do not
-- run are left alone, so the step is idempotent and races with other stop steps settle
-- each worker once. The per-worker keys are built from the prefixes (same hash tag).
-- A failing task needs its condition signed for it (see settle_plan in _lib): when one is
-- missing the script changes nothing and names them; the caller signs them and calls again.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    running                       (set)
-- KEYS[3]    queued                        (list)
-- KEYS[4]    failed                        (set)
-- KEYS[5]    tasks in own queues           (set)
-- ARGV[1]    the worker state "running"
-- ARGV[2]    new state: "killed" or "lost"
-- ARGV[3]    task hash prefix
-- ARGV[4]    pub/sub channel to notify
-- ARGV[5]    pending list prefix           (list prefix .. worker_id)
-- ARGV[6]    worker running set prefix     (set prefix .. worker_id)
-- ARGV[7]    own queue prefix              (list prefix .. worker_id)
-- ARGV[8]    deadlines prefix              (zset prefix .. worker_id)
-- ARGV[9]    N, the number of worker ids
-- ARGV[10 .. 9 + N]  worker ids
-- ARGV[10 + N ..]    signed conditions: per task its key, the spec of its condition and
--                    the pickle
-- Returns {stopped worker ids, failed keys, requeued keys, {}}; {{}, {}, {}, {key, spec,
-- ...}} when conditions are missing (nothing changed).

local n, task_prefix = tonumber(ARGV[9]), ARGV[3]
local stopping, plans = {}, {}
for i = 10, 9 + n do
  local id = ARGV[i]
  if redis.call("HGET", KEYS[1], id) == ARGV[1] then
    local w = {id, ARGV[5] .. id, ARGV[6] .. id, ARGV[7] .. id, ARGV[8] .. id}
    local own = {}
    leaving_plans(w, KEYS[2], task_prefix, "", own)
    for _, plan in ipairs(own) do
      plans[#plans + 1] = plan
    end
    stopping[#stopping + 1] = {w, own}
  end
end
local signed = signed_conditions(10 + n)
local missing = missing_conditions(plans, signed)
if #missing > 0 then
  return {{}, {}, {}, missing}
end
local out, stopped = {failed = {}, requeued = {}}, {}
local c = {KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]}
for _, s in ipairs(stopping) do
  stop_apply(s[1], ARGV[2], s[2], signed, c, out)
  stopped[#stopped + 1] = s[1][1]
end
if #stopped > 0 then
  redis.call("PUBLISH", ARGV[4], "workers")
end
return {stopped, out.failed, out.requeued, {}}
