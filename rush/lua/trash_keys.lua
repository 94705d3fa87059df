-- trash_keys: the first, atomic step of a reset. It moves the network's fixed keys away
-- (RENAME is O(1) whatever a key holds), so to every reader the network (or its task
-- data) is gone at once, and records what is left to free: the moved keys, and the ids
-- of the workers whose per-worker keys go too. empty_trash then frees it all in slices,
-- so no step blocks Redis long, however large the network or the keyspace.
--
-- KEYS[1]    trash                         (hash reset id -> plan, a JSON text)
-- KEYS[2]    worker states                 (hash worker_id -> state; only read)
-- KEYS[3]    worker start arguments        (hash worker_id -> id; only read)
-- KEYS[4..]  the keys to move away         (any type; missing ones are skipped)
-- ARGV[1]    reset id
-- ARGV[2]    trash prefix of this reset: key n goes to prefix .. n; the worker ids go to
--            prefix .. "workers"
-- ARGV[3]    the plan to record (JSON), read back by rush if this reset is interrupted
-- Returns the number of keys moved.

local workers = ARGV[2] .. "workers"
for k = 2, 3 do
  local ids = redis.call("HKEYS", KEYS[k])
  for i = 1, #ids, 1000 do
    redis.call("SADD", workers, unpack(ids, i, math.min(i + 999, #ids)))
  end
end
local moved = 0
for i = 4, #KEYS do
  if redis.call("EXISTS", KEYS[i]) == 1 then
    redis.call("RENAME", KEYS[i], ARGV[2] .. (i - 3))
    moved = moved + 1
  end
end
redis.call("HSET", KEYS[1], ARGV[1], ARGV[3])
return moved
