-- queuestore prelude: every script calls redis through rcall, never redis.call.
-- The strict-keys build swaps this prelude for a checker (see _prelude_strict.lua).
local rcall = redis.call
