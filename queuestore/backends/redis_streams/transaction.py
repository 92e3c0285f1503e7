"""A batch take of ``redis-streams`` as one transaction, the entries never passing through Lua.

``take.lua`` reads the entries inside the script (XREADGROUP), writes a lease record per entry
and returns them: the entries are turned from RESP into Lua tables and back, which costs the
server more than reading and acking them does. A take of two or more jobs on a standalone
server is sent instead as one ``MULTI``:

1. ``lease.lua`` ``before``: what is due is made ready first (expired leases, due delayed jobs,
   waiting jobs past their TTL), as ``take.lua`` does (should it fail, the take goes on and the
   failure is logged: the entries it read are leased all the same);
2. ``XREADGROUP GROUP <group> @<call id>:<consumer> COUNT <n> STREAMS <stream> >``: the take
   reads as a consumer of its own;
3. ``lease.lua`` ``after``: one lease record for everything the take read (its consumer ->
   deadline), and the call's record (a retry of the call returns what is pending under that
   consumer).

The jobs' lease tokens name the take's consumer. An entry extended later gets a lease record of
its own; acks and reclaims treat both (see ``lua/_lib.lua``). When the transaction read nothing,
failed, or its reply was lost, the take goes on through ``take.lua`` with the same call id: a
transaction that ran is then replayed, one that did not is taken anew, and one that runs late
finds the record and hands back what it read. Entries the client cannot lease as read (tagged
for another group, past their TTL) go through ``lease.lua`` ``sift``.

Not used for a lease longer than ``claim_min_idle`` (the orphan sweep takes an entry idle that
long for one whose lease ran out), on a cluster or a pool the lane cannot use, or on Dragonfly.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import NoScriptError, RedisError

from queuestore.backends._redis.errors import outcome_unknown, translate
from queuestore.backends.redis_streams.layout import ms
from queuestore.backends.redis_streams.store import StreamsStore, log

__all__ = ["Read", "read_in_transaction", "sift", "usable"]

#: what a transaction take gave: (the entries as XREADGROUP returns them, ``[id, fields]`` each,
#: deadline ms, server now ms, the take's consumer), or None when the take must go on through
#: take.lua
Read = tuple[list[Any], int, int, str] | None


def usable(store: StreamsStore, count: int, lease: float) -> bool:
    """Whether a take of ``count`` for ``lease`` seconds may be one transaction: two jobs or
    more, a lease no longer than ``claim_min_idle``, a client with a lane (standalone), and
    not Dragonfly."""
    return (
        count >= 2
        and lease <= store.claim_min_idle
        and store.conn.lane is not None
        and store.server_kind != "dragonfly"
    )


async def read_in_transaction(
    store: StreamsStore, group: str, consumer: str, count: int, lease: float, cid: str
) -> Read:
    """Take up to ``count`` entries as one transaction (see the module docstring).

    Returns:
        The entries, deadline, server time and the take's consumer; None when the take must go
        on through ``take.lua`` with the same call id (nothing read, no lane, the read failed,
        or the reply was lost and ``max_retries`` allows a retry).

    Raises:
        OutcomeUnknownError: the reply was lost and ``max_retries`` is 0.
        BackendError: the transaction failed otherwise, or a script failed on the server.
    """
    take_consumer = f"@{cid}:{consumer}"
    arg = store.call_id(cid, held=True)
    script = store.script_set.scripts["lease"]
    keys = store.keys.core()
    o = store.options
    common = (
        group,
        take_consumer,
        arg,
        ms(lease),
        o.claim_count,
        o.reclaim_batch,
        store.queue,
        int(store.retain),
    )
    head = ("EVALSHA", script.sha, len(keys), *keys)
    commands = [
        (*head, "before", *common),
        ("XREADGROUP", "GROUP", group, take_consumer, "COUNT", count, "STREAMS", store.keys.stream, ">"),
        (*head, "after", *common),
    ]
    store.script_set.calls["lease"] += 1
    ok = False
    try:
        replies = await store.transaction("dequeue", commands)
        ok = replies is not None
    except RedisError as exc:
        err = translate(store.name, "dequeue", exc)
        err.__cause__ = exc
        unknown = outcome_unknown(err)
        if unknown is None:
            raise err from exc
        if store.options.max_retries == 0:
            raise unknown from exc  # no retry allowed: the caller hands the take back
        return None  # the retry: the take script with the same call id
    finally:
        store.calls.settle([arg], ok)
    if replies is None:
        return None
    before, read, after = replies
    if isinstance(before, BaseException) and not isinstance(before, NoScriptError):
        # the take goes on (the read and its lease are fine); what was due stays for the next
        # sweep, and the failure is said, not swallowed (a flushed cache just skips one sweep)
        log.warning(
            "redis-streams %s: the sweep before a batch take failed, the take went on: %s",
            store.name,
            translate(store.name, "dequeue", before),
        )
    if isinstance(read, BaseException):
        return None
    if isinstance(after, NoScriptError):
        store.script_set.reloads += 1
        after = await store.script("dequeue", "lease", keys, ["after", *common])
    elif isinstance(after, BaseException):
        raise translate(store.name, "dequeue", after) from after
    if not after or not after[0]:
        return None
    return _entries(read), int(after[0]), int(after[1]), take_consumer


def _entries(read: Any) -> list[Any]:
    """The entries of one stream's XREADGROUP reply (RESP2: ``[[stream, entries]]``, RESP3: a
    map); none for nil."""
    if not read:
        return []
    if type(read) is dict:
        return list(next(iter(read.values())))
    return list(read[0][1])


async def sift(
    store: StreamsStore, group: str, holder: str, read: list[Any], lease: float, now_ms: int
) -> list[Any]:
    """The entries a transaction take read (``[id, fields]`` each), as the take script returns
    them (``(id, deliveries, fields)``), but those not the group's to lease: one tagged for
    another group (its retry) or past its TTL goes through ``lease.lua`` ``sift``, which
    releases or drops it (as ``take.lua`` does when it reads one).

    Raises:
        BackendError: the store failed.
    """
    mine = group.encode()
    entries: list[Any] = []
    odd: list[Any] = []
    for eid, raw in read:
        # as enqueue writes it, without a TTL, is the group's (no tag); any other is looked at
        plain = (
            type(raw) is list and len(raw) == 12 and raw[11] == b"0" and raw[0] == b"j" and raw[10] == b"x"
        )
        if not plain and _not_for(raw, mine, now_ms):
            odd.append(eid)
        entries.append((eid, 1, raw))
    if not odd:
        return entries
    o = store.options
    args = [
        "sift",
        group,
        holder,
        "",
        ms(lease),
        o.claim_count,
        o.reclaim_batch,
        store.queue,
        int(store.retain),
        *odd,
    ]
    kept = {e[0]: e for e in await store.script("dequeue", "lease", store.keys.core(), args)}
    sifted = set(odd)
    return [kept.get(e[0], e) for e in entries if e[0] not in sifted or e[0] in kept]


def _not_for(raw: Any, group: bytes, now_ms: int) -> bool:
    """Whether an entry's fields tag it for another group or put it past its TTL (fields
    that are not a list are garbage: the job reading says why)."""
    if type(raw) is not list:
        return False
    if len(raw) == 12 and raw[0] == b"j" and raw[10] == b"x":  # as enqueue writes it
        return raw[11] != b"0" and _past(raw[11], now_ms)
    tag = ttl = None
    for k in range(0, len(raw) - 1, 2):
        if raw[k] == b"g":
            tag = raw[k + 1]
        elif raw[k] == b"x":
            ttl = raw[k + 1]
    return (tag is not None and tag != group) or (ttl is not None and _past(ttl, now_ms))


def _past(expiry: Any, now_ms: int) -> bool:
    try:
        at = float(expiry)
    except (TypeError, ValueError):
        return False
    return 0 < at <= now_ms
