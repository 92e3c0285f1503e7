"""Durable writes: the WAIT / WAITAOF commands that follow each one, and the check of their replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from queuestore.backends._redis.connection import RedisConnection
from queuestore.backends._redis.errors import translate
from queuestore.backends._redis.options import RedisBackendOptions
from queuestore.backends._redis.probe import ServerInfo
from queuestore.backends._redis.scripts import ScriptCall, ScriptSet
from queuestore.errors import BackendError, ConfigurationError, OperationTimeoutError

__all__ = ["DURABLE_OPS", "check_waits", "durability_waits", "run_durable"]

#: operations whose writes ``wait_for_replicas`` / ``wait_for_fsync`` confirm: enqueue and
#: ack, plus the copy step of a migration (a job lost there after its release is gone)
DURABLE_OPS = frozenset({"enqueue", "enqueue_many", "import_jobs", "ack", "ack_many"})


def durability_waits(options: RedisBackendOptions, server: ServerInfo) -> list[list[Any]]:
    """The commands that follow each durable write, for the probed server.

    ``wait_for_replicas`` -> ``WAIT n ms``. ``wait_for_fsync`` -> ``WAITAOF 1 0 ms``
    where the server has it; on a server without WAITAOF that fsyncs every write
    before replying (``appendonly yes`` + ``appendfsync always``) nothing is needed.

    Raises:
        ConfigurationError: naming the option the connected server cannot honour.
    """
    waits: list[list[Any]] = []
    ms = max(1, int(float(options.wait_timeout) * 1000))
    if options.wait_for_replicas:
        if not server.has_wait:
            raise ConfigurationError("options.wait_for_replicas", f"{server.label} has no WAIT command")
        waits.append(["WAIT", options.wait_for_replicas, ms])
    if options.wait_for_fsync:
        if server.aof_enabled is False:
            raise ConfigurationError(
                "options.wait_for_fsync", f"{server.label} has no AOF (appendonly no): nothing is fsynced"
            )
        if server.has_waitaof:
            waits.append(["WAITAOF", 1, 0, ms])
        elif not (server.aof_enabled and server.appendfsync == "always"):
            raise ConfigurationError(
                "options.wait_for_fsync",
                f"{server.label} has no WAITAOF (Redis/Valkey 7.2+) and does not fsync every write "
                "(appendonly yes + appendfsync always); set one of those on the server or drop the option",
            )
    return waits


def check_waits(backend: str, op: str, waits: Sequence[Sequence[Any]], replies: Sequence[Any]) -> None:
    """Check WAIT / WAITAOF replies against what was asked.

    Raises:
        OperationTimeoutError: fewer replicas / no local fsync confirmed in time (the write
            itself was applied on the primary: a retry of an enqueue is a no-op by id).
        BackendError: the server refused the wait command (e.g. WAITAOF after AOF was turned
            off at run time); the message says the write was applied all the same.
    """
    for cmd, reply in zip(waits, replies, strict=True):
        if isinstance(reply, ResponseError):
            raise BackendError(
                backend, op, f"the write was applied, but the server refused {cmd[0]} after it: {reply}"
            ) from reply
        if isinstance(reply, BaseException):
            raise translate(backend, op, reply) from reply
        if cmd[0] == "WAIT" and int(reply) < int(cmd[1]):
            raise OperationTimeoutError(
                backend,
                op,
                f"write applied on the primary but acknowledged by {int(reply)} of {cmd[1]} "
                f"replicas within {cmd[2]} ms (wait_for_replicas)",
            )
        if cmd[0] == "WAITAOF" and int(reply[0]) < 1:
            raise OperationTimeoutError(
                backend,
                op,
                f"write applied but not fsynced to the local AOF within {cmd[3]} ms (wait_for_fsync)",
            )


async def run_durable(
    backend: str,
    op: str,
    conn: RedisConnection,
    script_set: ScriptSet,
    waits: Sequence[Sequence[Any]],
    wait_timeout: float,
    calls: Sequence[ScriptCall],
) -> list[Any]:
    """Scripts then WAIT / WAITAOF in one pipeline (one connection: WAIT counts the writes of
    its own connection); NOSCRIPT entries are re-sent with their body in a second pipeline
    that ends with the waits too.

    Returns:
        One reply per script call (an error reply as its exception instance).

    Raises:
        OperationTimeoutError: the writes were applied but not confirmed in ``wait_timeout``.
        redis.exceptions.RedisError: the caller translates it.
    """
    client = conn.waiting_client(wait_timeout)
    script_set.calls.update(c.name for c in calls)
    out = await _durable_pipeline(backend, op, conn, client, script_set, waits, calls, use_body=False)
    retry = [i for i, r in enumerate(out) if isinstance(r, NoScriptError)]
    if retry:
        script_set.reloads += 1
        again = [calls[i] for i in retry]
        replies = await _durable_pipeline(backend, op, conn, client, script_set, waits, again, use_body=True)
        for i, r in zip(retry, replies, strict=True):
            out[i] = r
    return out


async def _durable_pipeline(
    backend: str,
    op: str,
    conn: RedisConnection,
    client: Any,
    script_set: ScriptSet,
    waits: Sequence[Sequence[Any]],
    calls: Sequence[ScriptCall],
    *,
    use_body: bool,
) -> list[Any]:
    """One pipeline: the scripts (by SHA, or by body), then the waits on the same connection.

    Raises:
        OperationTimeoutError: a wait was not satisfied (see :func:`check_waits`).
        redis.exceptions.RedisError: the connection failed (the caller translates it).
    """
    pipe = client.pipeline(transaction=False)
    for c in calls:
        s = script_set.scripts[c.name]
        head = ("EVAL", s.body) if use_body else ("EVALSHA", s.sha)
        pipe.execute_command(*head, len(c.keys), *c.keys, *c.args)
    # on a cluster the waits go to the node of the writes (all of one queue: one slot)
    kw: dict[str, Any] = {}
    if conn.cluster:
        await client.initialize()  # a no-op once this client knows the slot map
        kw["target_nodes"] = client.get_node_from_key(calls[0].keys[0])
    for cmd in waits:
        pipe.execute_command(*cmd, **kw)
    replies = list(await pipe.execute(raise_on_error=False))
    results, acks = replies[: len(calls)], replies[len(calls) :]
    if any(not isinstance(r, NoScriptError) for r in results):
        check_waits(backend, op, waits, acks)
    return results
