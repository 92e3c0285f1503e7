"""The key block is declared once: the Lua constants every lists script sees are generated
from ``KEY_SUFFIXES`` and the state codes, and the Lua library declares none of its own."""

from __future__ import annotations

import re

from queuestore import JobState
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.layout import KEY_SUFFIXES, LUA_PREAMBLE, SET_OF, STATE_CODE
from tests.servers import RedisServer


def test_the_library_does_not_declare_the_key_block() -> None:
    library = RedisListsBackend.lua_folder.joinpath("_lib.lua").read_text(encoding="utf-8")
    names = "|".join(s.upper() for s in KEY_SUFFIXES)
    assert not re.search(rf"^local\s+[A-Z_, ]*\b({names}|STATE_SET|BLOCK_LEN|EXTRA)\b", library, re.M)
    assert RedisListsBackend.lua_preamble == LUA_PREAMBLE


def test_lua_constants_are_the_python_ones(redis_server: RedisServer) -> None:
    names = [s.upper() for s in KEY_SUFFIXES]
    states = [STATE_CODE[s] for s in SET_OF]
    script = (
        LUA_PREAMBLE
        + f"local out = {{{', '.join(names)}, BLOCK_LEN, EXTRA}}\n"
        + "for _, code in ipairs(ARGV) do out[#out + 1] = STATE_SET[code] end\n"
        + "return out\n"
    )
    got = redis_server.sync_client().eval(script, 0, *states)
    block_len = len(KEY_SUFFIXES)
    assert got == [*range(1, block_len + 1), block_len, block_len + 1, *(SET_OF[s] + 1 for s in SET_OF)]
    assert [KEY_SUFFIXES[SET_OF[s]] for s in (JobState.READY, JobState.IN_FLIGHT)] == ["ready", "inflight"]
