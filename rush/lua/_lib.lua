-- _lib: helpers every script shares. scripts.py puts this header and the helpers a script
-- calls in front of it when it loads it (scripts on Redis 6.2 cannot call one another).
-- Each helper is a top-level `local function`, with its comment right above it.
--
-- Conventions of every script:
-- * fixed keys of the network come in KEYS; per-task and per-worker keys are built from
--   the prefixes that rush/keys.py makes, passed in ARGV (all under the network's hash
--   tag, so in one Cluster slot);
-- * state names come from Python in ARGV, never written here;
-- * a writer is identified by its WRITER block, five ARGV values in this order: worker
--   id ("" for a controller), incarnation (the token of this start of the worker id),
--   the worker state "running", the network's epoch as the writer knows it, and a step
--   id ("" for none). A worker may write only while its id is running in its own
--   incarnation; a controller only while the network is the one it joined (same epoch);
-- * a write sent twice (a client retry after a lost reply) changes nothing twice: a
--   create skips tasks that exist, a move leaves tasks that are not running (and knows
--   its own earlier write), and a claim, the one step that would take a second task,
--   records which task each step took under the worker's step key, so the same step
--   sent again gets the same task;
-- * a script that writes for a worker replies {terminate flag, payload}: the flag (1 when
--   the worker was told to terminate) rides along so a worker's loop needs no extra round
--   trip to read it;
-- * task fields are opaque pickles, except those the scripts read, stored as text
--   (serialization.TEXT_FIELDS): worker_id, timeout, max_retries, attempts; a pickle is
--   signed for the key and field it is stored at, so a script only places pickles that
--   Python made for that place (conditions: see settle_plan);
-- * time is Redis's clock (now()), never a client's.

local function worker_stopped()
  return redis.error_reply("WORKER_STOPPED")
end

local function network_lost()
  return redis.error_reply("NETWORK_LOST")
end

-- nil when the writer may write, else the error reply that says why not.
-- w: {worker_id, incarnation, running, epoch}; keys: worker states, incarnations, epoch.
local function refusal(states, incarnations, epoch_key, w)
  if w[1] ~= "" and redis.call("HGET", states, w[1]) == w[3]
      and redis.call("HGET", incarnations, w[1]) == w[2] then
    return nil
  end
  if redis.call("GET", epoch_key) ~= w[4] then
    return network_lost()
  end
  if w[1] == "" then
    return nil
  end
  return worker_stopped()
end

-- The WRITER block starting at ARGV[at], as {worker_id, incarnation, running, epoch, step}.
local function writer(at)
  return {ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3], ARGV[at + 4]}
end

-- The task an earlier run of this claim step took, if it ran already (nil: it did not).
local function claimed_before(step_key, w)
  if w[5] == "" then
    return nil
  end
  local record = redis.call("HMGET", step_key, "id", "key")
  if record[1] == w[5] then
    return record[2]
  end
  return nil
end

-- Remember which task this claim step took.
local function remember_claim(step_key, w, key)
  if w[5] ~= "" then
    redis.call("HSET", step_key, "id", w[5], "key", key)
  end
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
-- `field`, `value` (optional): one more pair, written by the same HSET.
local function write_row(hash, names, nf, at, field, value)
  local pairs = {}
  if field then
    pairs[1] = field
    pairs[2] = value
  end
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

-- Redis's clock, in seconds (deadlines of timeouts use it, so no client's clock matters).
local function now()
  local t = redis.call("TIME")
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- Create a task: its hash (F field values, as in write_row, plus the optional pair
-- `field`, `value`) and its place in the list of all tasks. False, and nothing written,
-- when its hash exists (a resent call).
local function new_task(all_tasks, hash, key, names, nf, at, field, value)
  if redis.call("EXISTS", hash) == 1 then
    return false
  end
  write_row(hash, names, nf, at, field, value)
  redis.call("RPUSH", all_tasks, key)
  return true
end

-- Create the tasks of the rows ARGV[first ..] (each a key and F values, field names at
-- ARGV[names + 1 ..]) up to ARGV[last], in the collection `target` of `kind` ("list",
-- "set", or "running": a set, and `own_running`, with the task's worker_id set to
-- `worker_id`). Returns the keys that existed (not written) and how many were created.
local function create_rows(all_tasks, target, kind, own_running, worker_id, prefix, names,
                           nf, first, last)
  local existing, created = {}, 0
  local field, value
  if kind == "running" then
    field, value = "worker_id", worker_id
  end
  for at = first, last, nf + 1 do
    local key = ARGV[at]
    if new_task(all_tasks, prefix .. key, key, names, nf, at, field, value) then
      add_to(kind, target, key)
      if field then
        redis.call("SADD", own_running, key)
      end
      created = created + 1
    else
      existing[#existing + 1] = key
    end
  end
  return existing, created
end

-- Move the running tasks of the rows ARGV[first ..] (each a key and F values, field names
-- at ARGV[names + 1 ..]) up to ARGV[last] to `dest` of `kind` ("list" or "set"), writing
-- their rows. First writer wins: a key moves only if it is still in `running`; every
-- other key is discarded, but for one whose first field already holds this call's value
-- (the call ran before: a resend). Returns the discarded keys and how many moved.
local function move_rows(running, dest, kind, own_running, prefix, names, nf, first, last)
  local discarded, moved = {}, 0
  for at = first, last, nf + 1 do
    local key = ARGV[at]
    if redis.call("SREM", running, key) == 1 then
      write_row(prefix .. key, names, nf, at)
      add_to(kind, dest, key)
      redis.call("SREM", own_running, key)
      moved = moved + 1
    elseif ARGV[at + 1] == "" or redis.call("HGET", prefix .. key, ARGV[names + 1]) ~= ARGV[at + 1] then
      discarded[#discarded + 1] = key
    end
  end
  return discarded, moved
end

-- The fields ARGV[first ..] of the task `key`, as {key, values...} (a resent claim).
local function read_claimed(prefix, key, first)
  local task = {key}
  local got = redis.call("HMGET", prefix .. key, unpack(ARGV, first))
  for i = 1, #got do
    task[#task + 1] = got[i]
  end
  return task
end

-- A claim refused because the worker no longer runs: its pending keys (moved there by a
-- blocking pop) go back to the head of the queue; they never started, and no task is lost.
local function release_pending(pending, queued)
  local keys = redis.call("LRANGE", pending, 0, -1)
  for i = #keys, 1, -1 do
    redis.call("LPUSH", queued, keys[i])
  end
  redis.call("DEL", pending)
end

-- Mark the next task running for the writer `w` (allowed to write): from its pending
-- list, else (unless `pending_only`) its own queue, else the shared queue. c: the claim's
-- keys {pending, queued, running, own_running, step, own_queue, priority, deadlines}. Task
-- control: a task with "max_retries" counts this attempt in "attempts", a task with a
-- "timeout" gets its deadline (Redis time + timeout). Returns {key, values of the fields
-- ARGV[first ..]}, or nil when there is no task.
local function claim_next(c, w, prefix, pending_only, first)
  local key = false
  -- both lists are empty nearly always: one EXISTS instead of two LPOPs then
  if redis.call("EXISTS", c.pending, c.own_queue) > 0 then
    key = redis.call("LPOP", c.pending)
    if not key and not pending_only then
      key = redis.call("LPOP", c.own_queue)
      if key then
        redis.call("SREM", c.priority, key)
      end
    end
  end
  if not key and not pending_only then
    key = redis.call("LPOP", c.queued)
  end
  if not key then
    return nil
  end
  local hash = prefix .. key
  remember_claim(c.step, w, key)
  redis.call("SADD", c.running, key)
  redis.call("SADD", c.own_running, key)
  redis.call("HSET", hash, "worker_id", w[1])
  local got = redis.call("HMGET", hash, "timeout", "max_retries", unpack(ARGV, first))
  if got[2] then
    local attempts = redis.call("HINCRBY", hash, "attempts", 1)
    for i = 3, #got do
      if ARGV[first + i - 3] == "attempts" then
        got[i] = attempts
      end
    end
  end
  if got[1] then
    redis.call("ZADD", c.deadlines, string.format("%.6f", now() + tonumber(got[1])), key)
  end
  local task = {key}
  for i = 3, #got do
    task[#task + 1] = got[i]
  end
  return task
end

-- Whether a task runs on a worker: in the running set, with that worker id in its hash
-- (a worker's running set may keep keys another writer moved on).
local function runs_on(running, task_prefix, key, worker_id)
  return redis.call("SISMEMBER", running, key) == 1
      and redis.call("HGET", task_prefix .. key, "worker_id") == worker_id
end

-- Move the tasks waiting in a worker's own queue to the head of the shared queue, in their
-- order: the worker no longer runs, and a task never waits for a worker that doesn't.
local function release_own_queue(own, queued, priority)
  local keys = redis.call("LRANGE", own, 0, -1)
  for i = #keys, 1, -1 do
    redis.call("LPUSH", queued, keys[i])
    redis.call("SREM", priority, keys[i])
  end
  redis.call("DEL", own)
end

-- Settling the tasks a stopped worker leaves behind (running or pending), in the step that
-- stops it. A task with "max_retries" goes back to the head of the queue while it has
-- attempts left; else, or without retries, it fails with a condition. "attempts" counts
-- the workers a task was handed to: claim_task counts a claimed task; a pending one
-- (`counted` false) is counted here, so no path hands a task out more than
-- max_retries + 1 times.
--
-- A condition is a pickle signed for the task hash it lands in (serialization.py), so
-- Python makes one per failing task, and a script settles in two phases: it plans every
-- task first (settle_plan, no writes); when a failing task has no signed condition for its
-- plan, it replies with the missing ones (missing_conditions) and changes nothing, and
-- Python calls again with them. Only then does it write (settle_apply).
-- A condition is named by its spec: the variant ("d": the step's condition, "t": the
-- timed-out task's own), followed by the number of attempts when the task used its last
-- one ("d3" is "Task failed after 3 attempts: <message of d>").

-- The plan of one left task: {key, hash, counted, retries, worker_id, requeue | spec}.
local function settle_plan(key, counted, variant, task_prefix, worker_id)
  local hash = task_prefix .. key
  local control = redis.call("HMGET", hash, "max_retries", "attempts")
  local plan = {key = key, hash = hash, counted = counted, retries = control[1] ~= false,
                worker_id = worker_id}
  if not control[1] then
    plan.spec = variant
    return plan
  end
  local attempts = tonumber(control[2] or "0")
  if not counted then
    attempts = attempts + 1
  end
  if attempts <= tonumber(control[1]) then
    plan.requeue = true
  else
    plan.spec = variant .. attempts
  end
  return plan
end

-- The signed conditions in ARGV[at ..]: triples key, spec, pickle -> {key = {spec, pickle}}.
local function signed_conditions(at)
  local signed = {}
  for i = at, #ARGV, 3 do
    signed[ARGV[i]] = {ARGV[i + 1], ARGV[i + 2]}
  end
  return signed
end

-- Flat {key, spec, ...} of the failing tasks of `plans` without a signed condition.
local function missing_conditions(plans, signed)
  local missing = {}
  for _, plan in ipairs(plans) do
    local got = signed[plan.key]
    if plan.spec and not (got and got[1] == plan.spec) then
      missing[#missing + 1] = plan.key
      missing[#missing + 1] = plan.spec
    end
  end
  return missing
end

-- Carry out one plan: back to the head of `queued`, or into `failed` with its condition.
-- out: {failed = {}, requeued = {}}, the key is appended to one of them.
local function settle_apply(plan, signed, queued, failed, out)
  if plan.retries and not plan.counted then
    redis.call("HINCRBY", plan.hash, "attempts", 1)
  end
  if plan.requeue then
    redis.call("LPUSH", queued, plan.key)
    redis.call("HDEL", plan.hash, "worker_id")
    out.requeued[#out.requeued + 1] = plan.key
  else
    redis.call("SADD", failed, plan.key)
    redis.call("HSET", plan.hash, "condition", signed[plan.key][2], "worker_id", plan.worker_id)
    out.failed[#out.failed + 1] = plan.key
  end
end

-- Stopping a running worker (stop_worker, stop_workers): plan what it leaves, then apply.
-- w: {id, pending list, running set, own queue, deadlines} of the worker.

-- Append to `plans` the plans of the tasks worker w leaves: its tasks that still run on it
-- (variant "t" for `timed_out`, "d" for the others), then its pending ones.
local function leaving_plans(w, running, task_prefix, timed_out, plans)
  for _, key in ipairs(redis.call("SMEMBERS", w[3])) do
    if runs_on(running, task_prefix, key, w[1]) then
      plans[#plans + 1] = settle_plan(key, true, key == timed_out and "t" or "d", task_prefix,
                                      w[1])
    end
  end
  for _, key in ipairs(redis.call("LRANGE", w[2], 0, -1)) do
    plans[#plans + 1] = settle_plan(key, false, "d", task_prefix, w[1])
  end
end

-- Mark worker w `new_state` and settle its `plans` (every condition signed); its own queue
-- goes to the shared queue. c: {states, running, queued, failed, priority}.
local function stop_apply(w, new_state, plans, signed, c, out)
  redis.call("HSET", c[1], w[1], new_state)
  for _, plan in ipairs(plans) do
    if plan.counted then
      redis.call("SREM", c[2], plan.key)
    end
    settle_apply(plan, signed, c[3], c[4], out)
  end
  release_own_queue(w[4], c[3], c[5])
  redis.call("DEL", w[2], w[3], w[5])
end
