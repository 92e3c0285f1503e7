-- queuestore prelude: every script calls redis through rcall, never redis.call.
-- The strict-keys build swaps this prelude for a checker (see _prelude_strict.lua).
local rcall = redis.call
-- rpcall: a command whose error the script reads (a table with err) instead of failing
local rpcall = redis.pcall
