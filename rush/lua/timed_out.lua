-- timed_out: the tasks of the given workers that run past their deadline (Redis time).
-- Deadline entries of tasks that no longer run on that worker are dropped on the way.
--
-- KEYS[1]    running                       (set)
-- ARGV[1]    deadlines prefix (the zset is prefix .. worker_id)
-- ARGV[2]    task hash prefix
-- ARGV[3..]  worker ids
-- Returns a flat array: per timed-out task, its worker id, its key and its timeout.

local out = {}
local t = now()
for i = 3, #ARGV do
  local worker_id = ARGV[i]
  local deadlines = ARGV[1] .. worker_id
  for _, key in ipairs(redis.call("ZRANGEBYSCORE", deadlines, "-inf", t)) do
    if runs_on(KEYS[1], ARGV[2], key, worker_id) then
      out[#out + 1] = worker_id
      out[#out + 1] = key
      out[#out + 1] = redis.call("HGET", ARGV[2] .. key, "timeout")
    else
      redis.call("ZREM", deadlines, key)
    end
  end
end
return out
