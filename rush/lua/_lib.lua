-- _lib: helpers every script shares. scripts.py puts this text in front of each script
-- when it loads them (scripts on Redis 6.2 cannot call one another).
--
-- Conventions of every script:
-- * fixed keys of the network come in KEYS; per-task and per-worker keys are built from
--   the prefixes that rush/keys.py makes, passed in ARGV (all under the network's hash
--   tag, so in one Cluster slot);
-- * state names come from Python in ARGV, never written here;
-- * a script that writes for a worker first checks that the worker is running, and
--   replies {terminate flag, payload}: the flag (1 when the worker was told to terminate)
--   rides along so a worker's loop needs no extra round trip to read it.

local function worker_in(states, worker_id, state)
  return redis.call("HGET", states, worker_id) == state
end

local function worker_stopped()
  return redis.error_reply("WORKER_STOPPED")
end

local function terminate_flag(terminate_set, worker_id)
  if worker_id == "" then
    return 0
  end
  return redis.call("SISMEMBER", terminate_set, worker_id)
end

-- Add a key to a state collection of kind "list" or "set".
local function add_to(kind, collection, key)
  if kind == "list" then
    redis.call("RPUSH", collection, key)
  else
    redis.call("SADD", collection, key)
  end
end

-- HSET one row of field values into a task hash. The F field names are
-- ARGV[names + 1 .. names + F], the values ARGV[at + 1 .. at + F]; "" = field absent.
local function write_row(hash, names, nf, at)
  local pairs = {}
  for f = 1, nf do
    local value = ARGV[at + f]
    if value ~= "" then
      pairs[#pairs + 1] = ARGV[names + f]
      pairs[#pairs + 1] = value
    end
  end
  if #pairs > 0 then
    redis.call("HSET", hash, unpack(pairs))
  end
end

-- Move keys to the failed set and store the condition (and the worker id, when given:
-- a task taken from a pending list has none yet) in their hashes.
local function fail_keys(failed, task_prefix, keys, condition, worker_id)
  for _, key in ipairs(keys) do
    redis.call("SADD", failed, key)
    if worker_id then
      redis.call("HSET", task_prefix .. key, "condition", condition, "worker_id", worker_id)
    else
      redis.call("HSET", task_prefix .. key, "condition", condition)
    end
  end
end

