-- move_tasks: finish or fail running tasks. First writer wins: a key moves only if it
-- is still in the running set; every other key is returned as discarded.
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    workers told to terminate     (set)
-- KEYS[5]    the writing worker's running set (set)
-- ARGV[1]    worker id that writes, or "" (a controller)
-- ARGV[2]    the worker state "running"
-- ARGV[3]    destination kind: "list" or "set"
-- ARGV[4]    pub/sub channel to notify
-- ARGV[5]    task hash prefix
-- ARGV[6]    F, the number of fields
-- ARGV[7 .. 6+F]   field names
-- then per task: its public key and F values ("" = field absent)
-- Returns {terminate, keys that were not running (discarded)}, or WORKER_STOPPED.

local worker_id = ARGV[1]
if worker_id ~= "" and not worker_in(KEYS[3], worker_id, ARGV[2]) then
  return worker_stopped()
end
local nf = tonumber(ARGV[6])
local discarded, moved = {}, 0
for at = 7 + nf, #ARGV, nf + 1 do
  local key = ARGV[at]
  if redis.call("SREM", KEYS[1], key) == 1 then
    write_row(ARGV[5] .. key, 6, nf, at)
    add_to(ARGV[3], KEYS[2], key)
    redis.call("SREM", KEYS[5], key)
    moved = moved + 1
  else
    discarded[#discarded + 1] = key
  end
end
if moved > 0 then
  redis.call("PUBLISH", ARGV[4], "tasks")
end
return {terminate_flag(KEYS[4], worker_id), discarded}
