"""Each script carries only the library definitions it reaches (``_redis/luashake.py``): Redis
runs a script's whole top level on every call."""

from __future__ import annotations

import pytest

from queuestore.backends._redis.luashake import LibraryShapeError, used_library
from queuestore.backends._redis.scripts import _folder_library
from queuestore.backends.redis_lists import RedisListsBackend
from queuestore.backends.redis_streams import RedisStreamsBackend

LIB = """-- a library
local A, B = 1, 2 -- two constants
local T = {
  x = "it's -- not a comment", y = B,
}
-- c's comment names D, which it does not use
local function c(k)
  return A + k
end
local function d()
  return c(T.x)
end
local function unused()
  return B
end
"""


def test_a_script_gets_what_it_reaches_in_order() -> None:
    kept = used_library(LIB, "return d()")
    assert "local function d()" in kept
    assert "local function c(k)" in kept
    assert "local T = {" in kept
    assert "local A, B = 1, 2" in kept  # c uses A, T uses B
    assert "unused" not in kept
    at = [kept.index(x) for x in ("local A, B", "local T", "function c", "function d")]
    assert at == sorted(at)


def test_names_in_comments_and_strings_do_not_count() -> None:
    assert used_library(LIB, 'local s = "d()" -- c(1)') == ""


def test_a_top_level_statement_is_refused() -> None:
    with pytest.raises(LibraryShapeError):
        used_library(LIB + "redis.call('DEL', KEYS[1])\n", "return d()")


@pytest.mark.parametrize("backend", [RedisListsBackend, RedisStreamsBackend])
def test_the_backend_libraries_are_made_of_definitions(backend: type) -> None:
    library = getattr(backend, "lua_preamble", "") + _folder_library(backend.lua_folder)
    assert used_library(library, "") == ""  # shakeable: nothing else runs at the top level
