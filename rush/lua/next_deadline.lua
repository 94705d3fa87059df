-- next_deadline: the earliest deadline among a worker's tasks with a timeout, and how far
-- off it is by Redis's clock. (A script rather than a pipeline with TIME: the clock read
-- is the one of the node that holds the deadlines, and a Redis Cluster client cannot
-- pipeline TIME.)
--
-- KEYS[1]    the worker's deadlines        (zset task key -> deadline, Redis time in s)
-- Returns {task key, seconds from now (a string: Lua numbers reply as integers)}, or an
-- empty array when the worker has no deadline.

local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
if #first == 0 then
  return {}
end
return {first[1], tostring(tonumber(first[2]) - now())}
