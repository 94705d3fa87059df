-- sweep_pending: fail tasks left in the pending list of a worker that no longer runs.
-- Closes two narrow windows: a blocking pop (BLMOVE) that lands after the worker was
-- declared lost and the worker dies before claiming the task; and a pop whose reply was
-- lost on a dropped connection, after which the worker ended. Only stopped workers'
-- lists are touched; a running worker's pending task is about to be claimed.
--
-- KEYS[1]    worker states                 (hash worker_id -> state)
-- KEYS[2]    failed                        (set)
-- KEYS[3]    the network's epoch           (string)
-- ARGV[1]    the worker state "running"
-- ARGV[2]    pending list prefix (the list is prefix .. worker_id)
-- ARGV[3]    pickled condition stored in each failed task
-- ARGV[4]    task hash prefix
-- ARGV[5]    pub/sub channel to notify
-- ARGV[6]    the epoch the controller knows
-- Returns the failed keys, or NETWORK_LOST.

if redis.call("GET", KEYS[3]) ~= ARGV[6] then
  return network_lost()
end
local all = {}
local states = redis.call("HGETALL", KEYS[1])
for i = 1, #states, 2 do
  if states[i + 1] ~= ARGV[1] then
    local pending = ARGV[2] .. states[i]
    local keys = redis.call("LRANGE", pending, 0, -1)
    fail_keys(KEYS[2], ARGV[4], keys, ARGV[3], states[i])
    for _, key in ipairs(keys) do
      all[#all + 1] = key
    end
    redis.call("DEL", pending)
  end
end
if #all > 0 then
  redis.call("PUBLISH", ARGV[5], "tasks")
end
return all
