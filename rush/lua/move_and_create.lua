-- move_and_create: a decentralized worker's step in one call: finish or fail its running
-- tasks (as move_tasks), then create the tasks it runs next (as create_tasks with kind
-- "running"). Both or neither: a worker that no longer runs changes nothing. A resent
-- call changes nothing twice (moves find their own earlier write, creates skip tasks that
-- exist).
--
-- KEYS[1]    running                       (set)
-- KEYS[2]    destination                   (list: finished | set: failed)
-- KEYS[3]    worker states                 (hash worker_id -> state)
-- KEYS[4]    worker incarnations           (hash worker_id -> token)
-- KEYS[5]    the network's epoch           (string)
-- KEYS[6]    workers told to terminate     (set)
-- KEYS[7]    the worker's running set      (set)
-- KEYS[8]    all tasks, creation order     (list)
-- ARGV[1..5] WRITER (see _lib)
-- ARGV[6]    destination kind: "list" or "set"
-- ARGV[7]    pub/sub channel to notify
-- ARGV[8]    task hash prefix
-- ARGV[9]    F, the number of fields written to the moved tasks
-- ARGV[10 .. 9+F]  field names
-- ARGV[10+F] N, the number of moved tasks
-- then per moved task: its public key and F values ("" = field absent)
-- then G, the number of fields of the created tasks, and their G names
-- then per created task: its public key and G values ("" = field absent)
-- Returns one flat array (each nested table costs Redis a conversion): {terminate, D, the
-- D discarded keys (as move_tasks), then the keys that already existed (not written)},
-- or WORKER_STOPPED / NETWORK_LOST.

local w = writer(1)
local refused = refusal(KEYS[3], KEYS[4], KEYS[5], w)
if refused then
  return refused
end
local nf = tonumber(ARGV[9])
local first = 11 + nf
local at = first + tonumber(ARGV[10 + nf]) * (nf + 1)  -- G
local discarded, moved = move_rows(KEYS[1], KEYS[2], ARGV[6], KEYS[7], ARGV[8], 9, nf,
                                   first, at - 1)
local ng = tonumber(ARGV[at])
local existing = create_rows(KEYS[8], KEYS[1], "running", KEYS[7], w[1], ARGV[8], at, ng,
                             at + ng + 1, #ARGV)
if moved > 0 then
  redis.call("PUBLISH", ARGV[7], "tasks")
end
local reply = {terminate_flag(KEYS[6], w[1]), #discarded}
for i = 1, #discarded do
  reply[#reply + 1] = discarded[i]
end
for i = 1, #existing do
  reply[#reply + 1] = existing[i]
end
return reply
