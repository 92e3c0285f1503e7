"""A migration record names the process that runs it (``host:pid:run``); a record someone else
wrote, or garbled, names no process of this host rather than failing the reader."""

from __future__ import annotations

import os
import socket

from queuestore.migration._home import owner_id, owner_pid


def test_an_owner_names_its_process_on_this_host_only() -> None:
    host = socket.gethostname()
    assert owner_pid(owner_id()) == os.getpid()
    assert owner_pid(f"{host}:123:abcd") == 123
    assert owner_pid("another-host-entirely:123:abcd") is None


def test_a_garbled_owner_names_no_process() -> None:
    host = socket.gethostname()
    pids = ["\u00b2", "\u0661\u0662", "", "-1"]  # digits to str.isdigit; int() takes the second
    for garbled in [*(f"{host}:{pid}:abcd" for pid in pids), "", ":::"]:
        assert owner_pid(garbled) is None, garbled
