-- sweep_pending: settle tasks left in the pending list of a worker that no longer runs
-- (settle_plan: fail, or back to the queue while they have retries left).
-- Closes two narrow windows: a blocking pop (BLMOVE) that lands after the worker was
-- declared lost and the worker dies before claiming the task; and a pop whose reply was
-- lost on a dropped connection, after which the worker ended. Only stopped workers'
-- lists are touched; a running worker's pending task is about to be claimed.
-- A failing task needs its condition signed for it (see settle_plan in _lib): when one is
-- missing the script changes nothing and names them; the caller signs them and calls again.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    failed                        (set)
-- KEYS[3]    queued                        (list)
-- KEYS[4]    the network's epoch           (string)
-- ARGV[1]    the worker state "running"
-- ARGV[2]    pending list prefix (the list is prefix .. worker_id)
-- ARGV[3]    task hash prefix
-- ARGV[4]    pub/sub channel to notify
-- ARGV[5]    the epoch the controller knows
-- ARGV[6..]  signed conditions: per task its key, the spec of its condition and the pickle
-- Returns {failed keys, requeued keys, {}}; {{}, {}, {key, spec, ...}} when conditions are
-- missing (nothing changed); or NETWORK_LOST.

if redis.call("GET", KEYS[4]) ~= ARGV[5] then
  return network_lost()
end
local plans, lists = {}, {}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  if states[i + 1] ~= ARGV[1] then
    local pending = ARGV[2] .. states[i]
    local keys = redis.call("LRANGE", pending, 0, -1)
    for _, key in ipairs(keys) do
      plans[#plans + 1] = settle_plan(key, false, "d", ARGV[3], states[i])
    end
    if #keys > 0 then
      lists[#lists + 1] = pending
    end
  end
end
local signed = signed_conditions(6)
local missing = missing_conditions(plans, signed)
if #missing > 0 then
  return {{}, {}, missing}
end
local out = {failed = {}, requeued = {}}
for _, plan in ipairs(plans) do
  settle_apply(plan, signed, KEYS[3], KEYS[2], out)
end
for _, pending in ipairs(lists) do
  redis.call("DEL", pending)
end
if #out.failed > 0 then
  redis.call("PUBLISH", ARGV[4], "tasks")
end
return {out.failed, out.requeued, {}}
