-- move_tasks: finish or fail running tasks. First writer wins: a key moves only if it
-- is still in the running set; every other key is returned as discarded.
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    worker incarnations           (hash worker_id -> token)
-- KEYS[5]    the network's epoch           (string)
-- KEYS[6]    workers told to terminate     (set)
-- KEYS[7]    the writing worker's running set (set)
-- KEYS[8]    the writing worker's step record (hash; unused without a step id)
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
local again = replayed(KEYS[8], w)
if again then
  return again
end
local refused = refusal(KEYS[3], KEYS[4], KEYS[5], w)
if refused then
  return refused
end
local nf = tonumber(ARGV[9])
local discarded, moved = {}, 0
for at = 10 + nf, #ARGV, nf + 1 do
  local key = ARGV[at]
  if redis.call("SREM", KEYS[1], key) == 1 then
    write_row(ARGV[8] .. key, 9, nf, at)
    add_to(ARGV[6], KEYS[2], key)
    redis.call("SREM", KEYS[7], key)
    moved = moved + 1
  else
    discarded[#discarded + 1] = key
  end
end
if moved > 0 then
  redis.call("PUBLISH", ARGV[7], "tasks")
end
return recorded(KEYS[8], w, {terminate_flag(KEYS[6], w[1]), discarded})
