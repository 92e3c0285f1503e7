"""Call records forgotten on receipt: the ids of this client's calls whose reply came back, sent
along with its next mutating call to the same queue so that the script deletes their records.

A mutating script records its reply under the call's id so that a retry of the call after a
lost reply gets the recorded reply instead of acting twice (see ``_lib.lua``, "call records").
A record is needed only until the client has the reply: the client retries a call only while
it waits for that call's reply, and a call id is never reused. So once a reply is received
the record can go; this module collects such ids (per queue: one :class:`CallLog` per backend
instance, whose scripts all use the one queue's call records) and hands them out as part of
the call id argument of a later call, ``"<id>|<id1>,<id2>,..."``, which the scripts split
(``call_arg`` in ``_lib.lua``). They go in batches: a call lists them once :data:`FORGET_BATCH`
are waiting (then at most :data:`FORGET_MAX`), and the maintenance sweep lists whatever waits
(:meth:`CallLog.flush_arg`). Forgetting costs a script two commands and the parsing of the list;
a lone call that lists one id pays it in full, while a queue holds at most a batch of records
more than it would.

Why forgetting can never turn a retry into a double action: an id is listed only after its
call's reply was received (the wrapper that sends and retries the call returned it), and
after that nothing sends that id again; a call whose reply was lost is never listed (its
record stays for its retries, then the time and count pruning drops it). A retry of a call
re-sends its own argument unchanged, so it may list the same ids again: deleting a missing
record is harmless. A lease call whose record a hand-back still reads (a cancelled dequeue
gives back what its lease calls leased) is listed only once the dequeue returned its jobs
(``held``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["FORGET_BATCH", "FORGET_MAX", "CallIds", "CallLog", "new_call_id"]

#: ids listed with one call at most (one id is 17 to 24 bytes)
FORGET_MAX = 64
#: received ids that wait before a call lists them
FORGET_BATCH = 16
#: the call id is among the first arguments of every script that takes one
_SCAN = 8
#: received ids kept at most (older ones are left to the server's pruning)
_PENDING_MAX = 4096
#: call arguments handed out and not yet settled, kept at most (a leak guard)
_SENT_MAX = 4096


class CallIds:
    """New call ids: 64 random bits from the OS drawn for each id, then a per-process counter,
    ``<16 hex><counter, hex>``. The random part is what makes ids of different processes differ,
    also of processes that share one memory image: a forked child, or several processes
    restored from one snapshot (a serverless platform's snapshot restore runs no fork hooks,
    and a prefix drawn once per process would then be handed out by every restored copy, so one
    copy's call would be answered with another's recorded reply). The counter keeps the ids of
    one process apart without relying on chance. The OS's randomness costs a system call:
    ``timeit`` 0.47 µs an id against 0.17 for a per-process prefix, beside a lone call's
    ~150 µs of client time. The last two characters vary as a random id's do (the scripts'
    pruning turn reads them)."""

    __slots__ = ("_count",)

    def __init__(self) -> None:
        self._count = itertools.count(1)

    def new(self) -> str:
        """A call id never handed out before."""
        return f"{os.urandom(8).hex()}{next(self._count):x}"


_CALL_IDS = CallIds()
#: a new call id (see :class:`CallIds`)
new_call_id = _CALL_IDS.new


class CallLog:
    """One queue's received call ids, not yet forgotten by the server, as one client sees them."""

    __slots__ = ("_batch", "_pending", "_sent")

    def __init__(self, batch: int = FORGET_BATCH) -> None:
        #: received ids that wait before a call lists them
        self._batch = batch
        #: received ids to be forgotten (insertion ordered)
        self._pending: dict[str, None] = {}
        #: argument handed out -> (its call id, the ids it lists, held)
        self._sent: dict[str, tuple[str, tuple[str, ...], bool]] = {}

    @property
    def pending(self) -> int:
        """How many received ids wait to be sent."""
        return len(self._pending)

    def arg(self, cid: str, *, held: bool = False) -> str:
        """The call id argument of a new call ``cid``: ``cid``, then ``|`` and the received ids
        it carries (none, ``cid`` alone, while fewer than the batch wait). ``held``: the call's
        record is still needed after its reply (a lease call): it is listed only after
        :meth:`received`."""
        return self._hand_out(cid, held, len(self._pending) >= self._batch)

    def flush_arg(self) -> str:
        """A call id argument that records nothing (an empty id) and carries the received ids
        (the maintenance sweep sends it), however few; "" when there are none."""
        return self._hand_out("", True, True) if self._pending else ""

    def _hand_out(self, cid: str, held: bool, listing: bool) -> str:
        forgets = tuple(itertools.islice(self._pending, FORGET_MAX)) if listing else ()
        out = f"{cid}|{','.join(forgets)}" if forgets else cid
        if len(self._sent) >= _SENT_MAX:
            self._sent.clear()
        self._sent[out] = (cid, forgets, held)
        return out

    def settle(self, args: Sequence[Any], ok: bool) -> None:
        """The call whose arguments are ``args`` is over: ``ok`` when its reply came back, which
        makes its id one to forget and drops the ids it carried (the script deleted them)."""
        for a in args[:_SCAN]:
            if type(a) is str and (sent := self._sent.pop(a, None)) is not None:
                cid, forgets, held = sent
                if ok:
                    for f in forgets:
                        self._pending.pop(f, None)
                    if not held:
                        self.received(cid)
                return

    def received(self, cid: str) -> None:
        """``cid``'s reply came back and nothing reads its record any more: forget it."""
        if cid:
            if len(self._pending) >= _PENDING_MAX:
                self._pending.pop(next(iter(self._pending)))
            self._pending[cid] = None
