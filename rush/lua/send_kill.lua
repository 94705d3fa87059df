-- send_kill: push a kill signal to the kill channel of each worker, naming the
-- incarnation to kill (the heartbeat of another incarnation leaves it alone), and void
-- any unused launch token, so an engine run that starts only now stays out.
--
-- KEYS[1]    worker incarnations           (hash worker_id -> token)
-- ARGV[1]    kill channel prefix (the list is prefix .. worker_id)
-- ARGV[2]    launch token prefix (the key is prefix .. worker_id)
-- ARGV[3]    seconds a kill signal stays (nobody may ever read it)
-- ARGV[4..]  worker ids
-- Returns the number of signals sent.

for i = 4, #ARGV do
  local channel = ARGV[1] .. ARGV[i]
  redis.call("RPUSH", channel, redis.call("HGET", KEYS[1], ARGV[i]) or "")
  redis.call("EXPIRE", channel, ARGV[3])
  redis.call("DEL", ARGV[2] .. ARGV[i])
end
return #ARGV - 3
