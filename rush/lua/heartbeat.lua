-- heartbeat: what a worker's heartbeat process does to Redis, checked against its
-- incarnation so that an old heartbeat (of a worker found lost and started again under
-- the same id) can neither refresh nor delete the key of the new one. A beat also reads
-- the earliest deadline of the worker's running tasks, so the heartbeat knows when to
-- wake without another request.
--
-- KEYS[1]    worker incarnations           (hash worker_id -> token)
-- KEYS[2]    the network's epoch           (string)
-- KEYS[3]    the worker's heartbeat key    (string; holds the incarnation)
-- KEYS[4]    the worker's deadlines        (zset task key -> deadline, Redis time in s)
-- ARGV[1]    "beat" (refresh the key) or "forget" (delete it: the worker is gone)
-- ARGV[2]    worker id
-- ARGV[3]    incarnation of this heartbeat
-- ARGV[4]    the network's epoch as the heartbeat knows it
-- ARGV[5]    expiry in ms ("beat")
-- Returns {status, task key, seconds}: status "ok"; "stale" when another incarnation runs
-- now; "gone" when the network vanished (a restart without persistence, a flush, a
-- reset). After an "ok" beat, the task with the earliest deadline and the seconds until
-- it (negative: past; as text), else "" and "".

if redis.call("GET", KEYS[2]) ~= ARGV[4] then
  return {"gone", "", ""}
end
if redis.call("HGET", KEYS[1], ARGV[2]) ~= ARGV[3] then
  return {"stale", "", ""}
end
if ARGV[1] == "beat" then
  redis.call("SET", KEYS[3], ARGV[3], "PX", ARGV[5])
  local first = redis.call("ZRANGE", KEYS[4], 0, 0, "WITHSCORES")
  if #first > 0 then
    return {"ok", first[1], tostring(tonumber(first[2]) - now())}
  end
elseif redis.call("GET", KEYS[3]) == ARGV[3] then
  redis.call("DEL", KEYS[3])
end
return {"ok", "", ""}
