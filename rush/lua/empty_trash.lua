-- empty_trash: free one slice of what a reset moved away. Takes up to `count` members
-- of a list or set and unlinks, for each member, the key prefix .. member for every
-- prefix given (task hashes, per-worker keys, start arguments).
--
-- KEYS[1]    source                        (list or set of task keys / worker ids / ids)
-- ARGV[1]    kind of the source: "list" or "set"
-- ARGV[2]    how many members to take
-- ARGV[3..]  key prefixes, each under the network's hash tag
-- Returns the number of members taken (0: the source is empty).

local members
if ARGV[1] == "list" then
  members = redis.call("LPOP", KEYS[1], ARGV[2])
else
  members = redis.call("SPOP", KEYS[1], ARGV[2])
end
if not members then
  return 0
end
for _, member in ipairs(members) do
  for p = 3, #ARGV do
    redis.call("UNLINK", ARGV[p] .. member)
  end
end
return #members
