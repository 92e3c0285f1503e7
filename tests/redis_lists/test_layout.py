"""The key block is declared once: the Lua constants every lists script sees are generated
from ``KEY_SUFFIXES`` and the state codes, and the Lua library declares none of its own."""

from __future__ import annotations

import re

from queuestore import JobState
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_lists.layout import KEY_SUFFIXES, LUA_PREAMBLE, READY_LISTS, SET_OF, STATE_CODE
from tests.servers import RedisServer


def test_the_library_does_not_declare_the_key_block() -> None:
    library = RedisListsBackend.lua_folder.joinpath("_lib.lua").read_text(encoding="utf-8")
    names = "|".join(s.upper() for s in KEY_SUFFIXES if ":" not in s)
    generated = "STATE_SET|BLOCK_LEN|EXTRA|READY0|PRIO_MIN|PRIO_MAX|LAYOUT_NAME"
    assert not re.search(rf"^local\s+[A-Z_, ]*\b({names}|{generated})\b", library, re.M)
    assert RedisListsBackend.lua_preamble == LUA_PREAMBLE


def test_lua_constants_are_the_python_ones(redis_server: RedisServer) -> None:
    plain = [s for s in KEY_SUFFIXES if ":" not in s]
    states = [STATE_CODE[s] for s in SET_OF]
    script = (
        LUA_PREAMBLE
        + "local out = {"
        + ", ".join(s.upper() for s in plain)
        + ", READY0, PRIO_MIN, PRIO_MAX, BLOCK_LEN, EXTRA}\n"
        + "for _, code in ipairs(ARGV) do out[#out + 1] = STATE_SET[code] end\n"
        + "out[#out + 1] = LAYOUT_NAME\n"
        + "return out\n"
    )
    got = redis_server.sync_client().eval(script, 0, *states)
    block_len = len(KEY_SUFFIXES)
    assert got[: len(plain)] == [KEY_SUFFIXES.index(s) + 1 for s in plain]
    assert got[len(plain) : len(plain) + 5] == [
        KEY_SUFFIXES.index("ready:0") + 1,
        0,
        9,
        block_len,
        block_len + 1,
    ]
    assert got[len(plain) + 5 : -1] == [SET_OF[s] + 1 for s in SET_OF]
    assert got[-1] == b"redis-lists/2"
    assert [KEY_SUFFIXES[SET_OF[s]] for s in (JobState.DELAYED, JobState.IN_FLIGHT)] == [
        "delayed",
        "inflight",
    ]
    assert JobState.READY not in SET_OF  # ready jobs are in lists, one per priority
    assert tuple(f"ready:{p}" for p in range(10)) == READY_LISTS
    assert all(s in KEY_SUFFIXES for s in READY_LISTS)
