-- create_priority_tasks: create queued tasks, each in the own queue of the worker it names
-- while that worker runs, else in the shared queue, in one step. So a worker's own queue
-- only ever holds tasks while the worker runs (the steps that end it move them on).
-- Re-running the call with the same keys (a client retry) creates nothing twice.
--
-- KEYS[1]    all tasks, creation order     (list)
-- KEYS[2]    queued                        (list)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    tasks in own queues           (set)
-- KEYS[5]    the network's epoch           (string)
-- ARGV[1]    the worker state "running"
-- ARGV[2]    own queue prefix (the queue is prefix .. worker_id)
-- ARGV[3]    task hash prefix
-- ARGV[4]    the epoch the controller knows
-- ARGV[5]    F, the number of fields
-- ARGV[6 .. 5+F]   field names
-- then per task: its public key, the worker id ("" = the shared queue) and F values
-- ("" = field absent)
-- Returns the keys created in the shared queue, or NETWORK_LOST.

if redis.call("GET", KEYS[5]) ~= ARGV[4] then
  return network_lost()
end
local nf = tonumber(ARGV[5])
local shared = {}
for at = 6 + nf, #ARGV, nf + 2 do
  local key, target = ARGV[at], ARGV[at + 1]
  if new_task(KEYS[1], ARGV[3] .. key, key, 5, nf, at + 1) then
    if target ~= "" and redis.call("HGET", KEYS[3], target) == ARGV[1] then
      redis.call("RPUSH", ARGV[2] .. target, key)
      redis.call("SADD", KEYS[4], key)
    else
      redis.call("RPUSH", KEYS[2], key)
      shared[#shared + 1] = key
    end
  end
end
return shared
