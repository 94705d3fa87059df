-- sweep_pending: settle tasks left in the pending list of a worker that no longer runs
-- (settle_left_task: fail, or back to the queue while they have retries left).
-- Closes two narrow windows: a blocking pop (BLMOVE) that lands after the worker was
-- declared lost and the worker dies before claiming the task; and a pop whose reply was
-- lost on a dropped connection, after which the worker ended. Only stopped workers'
-- lists are touched; a running worker's pending task is about to be claimed.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    failed                        (set)
-- KEYS[3]    queued                        (list)
-- KEYS[4]    the network's epoch           (string)
-- ARGV[1]    the worker state "running"
-- ARGV[2]    pending list prefix (the list is prefix .. worker_id)
-- ARGV[3]    task hash prefix
-- ARGV[4]    pub/sub channel to notify
-- ARGV[5]    the placeholder of the template
-- ARGV[6]    pickled condition stored in each failed task
-- ARGV[7]    its template for a task that used its last attempt
-- ARGV[8]    the epoch the controller knows
-- Returns {failed keys, requeued keys}, or NETWORK_LOST.

if redis.call("GET", KEYS[4]) ~= ARGV[8] then
  return network_lost()
end
local cond = {plain = ARGV[6], exhausted = ARGV[7]}
local out = {failed = {}, requeued = {}}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  if states[i + 1] ~= ARGV[1] then
    local pending = ARGV[2] .. states[i]
    local ctx = {failed = KEYS[2], queued = KEYS[3], task_prefix = ARGV[3],
                 worker_id = states[i], placeholder = ARGV[5]}
    for _, key in ipairs(redis.call("LRANGE", pending, 0, -1)) do
      settle_left_task(key, false, cond, ctx, out)
    end
    redis.call("DEL", pending)
  end
end
if #out.failed > 0 then
  redis.call("PUBLISH", ARGV[4], "tasks")
end
return {out.failed, out.requeued}
