"""A loopback TCP proxy in front of a real server that loses, delays or cuts replies on command.

The proxy parses the RESP traffic both ways, so it knows which reply answers which request
(replies come back in request order on each connection, pipelines included). A fault is armed
with a predicate on a request's arguments; the matching requests (after ``skip`` of them, up to
``times``) get the fault:

* ``drop_reply``: the server runs the request, its reply is swallowed (the client times out);
* ``reset_after``: the server runs the request, then both connections are cut instead of
  forwarding its reply (the client sees the connection reset);
* ``delay_reply``: the reply is forwarded ``seconds`` late;
* ``delay_request``: the request reaches the server ``seconds`` late (also when the client has
  gone in the meantime: bytes a client sent are delivered, as the kernel would).

Usage::

    async with FaultProxy("127.0.0.1", server_port) as proxy:
        fault = proxy.drop_reply(script_call(sha, "nack"))
        ... connect the client to proxy.url ...
        assert fault.hits == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

__all__ = ["Fault", "FaultProxy", "Match", "resp_end", "script_call"]

#: a predicate on one request's arguments (``[b"EVALSHA", sha, numkeys, ...]``)
Match = Callable[[list[bytes]], bool]


def _line(buf: bytes | bytearray, pos: int) -> tuple[bytes, int] | None:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return None
    return bytes(buf[pos:end]), end + 2


def resp_end(buf: bytes | bytearray, pos: int = 0) -> int | None:
    """The index just past the complete RESP2/RESP3 message at ``pos``, or None if incomplete."""
    if pos >= len(buf):
        return None
    kind = buf[pos : pos + 1]
    got = _line(buf, pos + 1)
    if got is None:
        return None
    head, nxt = got
    if kind in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return nxt
    if kind in (b"$", b"!", b"="):
        n = int(head)
        if n < 0:
            return nxt
        return nxt + n + 2 if len(buf) >= nxt + n + 2 else None
    if kind in (b"*", b"~", b">", b"%", b"|"):
        n = int(head)
        items = n * 2 if kind in (b"%", b"|") else n
        for _ in range(max(items, 0)):
            end = resp_end(buf, nxt)
            if end is None:
                return None
            nxt = end
        return nxt
    # an inline command: one line
    return nxt


def request_args(message: bytes) -> list[bytes]:
    """The arguments of one request (an array of bulk strings, or an inline command)."""
    if not message.startswith(b"*"):
        return message.strip().split()
    head, pos = _line(message, 1) or (b"0", len(message))
    args: list[bytes] = []
    for _ in range(int(head)):
        length_line = _line(message, pos + 1)
        assert length_line is not None
        n, start = int(length_line[0]), length_line[1]
        args.append(message[start : start + n])
        pos = start + n + 2
    return args


def script_call(sha: str, op: str | None = None) -> Match:
    """Match EVALSHA of ``sha`` (or EVAL of the body with that SHA); with ``op``, only calls
    whose first ARGV is ``op``."""

    def match(args: list[bytes]) -> bool:
        if len(args) < 3:
            return False
        cmd = args[0].upper()
        if cmd == b"EVALSHA":
            if args[1].decode() != sha:
                return False
        elif cmd == b"EVAL":
            if hashlib.sha1(args[1]).hexdigest() != sha:
                return False
        else:
            return False
        if op is None:
            return True
        first = 3 + int(args[2])
        return len(args) > first and args[first] == op.encode()

    return match


@dataclass
class Fault:
    """One armed fault and how often it fired."""

    kind: str
    match: Match
    times: int = 1
    skip: int = 0
    seconds: float = 0.0
    hits: int = 0
    seen: int = 0

    def take(self, args: list[bytes]) -> bool:
        """Whether this request gets the fault (counting it)."""
        if self.hits >= self.times or not self.match(args):
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.hits += 1
        return True


class FaultProxy:
    """The proxy (see the module docstring). ``url`` is where clients connect."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.faults: list[Fault] = []
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        #: requests forwarded so far (all connections)
        self.requests = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def __aenter__(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # -- arming ------------------------------------------------------------------------------
    def _arm(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def drop_reply(self, match: Match, *, times: int = 1, skip: int = 0) -> Fault:
        """Swallow the replies of matching requests (the server still runs them)."""
        return self._arm(Fault("drop", match, times, skip))

    def reset_after(self, match: Match, *, times: int = 1, skip: int = 0) -> Fault:
        """Cut the connection where the replies of matching requests would be forwarded."""
        return self._arm(Fault("reset", match, times, skip))

    def error_reply(self, match: Match, *, times: int = 1, skip: int = 0) -> Fault:
        """The server runs the request; the client gets an error reply instead of its reply (a
        script that failed after some of its writes)."""
        return self._arm(Fault("error", match, times, skip))

    def delay_reply(self, match: Match, seconds: float, *, times: int = 1, skip: int = 0) -> Fault:
        """Forward the replies of matching requests ``seconds`` late."""
        return self._arm(Fault("delay_reply", match, times, skip, seconds))

    def delay_request(self, match: Match, seconds: float, *, times: int = 1, skip: int = 0) -> Fault:
        """Forward matching requests to the server ``seconds`` late."""
        return self._arm(Fault("delay_request", match, times, skip, seconds))

    # -- pumping -----------------------------------------------------------------------------
    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            c_writer.transport.abort()
            return
        self._writers.update((c_writer, s_writer))
        actions: deque[Fault | None] = deque()
        cut = asyncio.Event()

        def reset() -> None:
            cut.set()
            c_writer.transport.abort()
            s_writer.transport.abort()

        async def upstream() -> None:  # client -> server, request by request
            buf = bytearray()
            try:
                while data := await c_reader.read(65536):
                    buf += data
                    while (end := resp_end(buf)) is not None:
                        message, buf[:end] = bytes(buf[:end]), b""
                        args = request_args(message)
                        fault = next((f for f in self.faults if f.take(args)), None)
                        if fault is not None and fault.kind == "delay_request":
                            await asyncio.sleep(fault.seconds)
                            fault = None
                        actions.append(fault)
                        if cut.is_set():
                            return
                        s_writer.write(message)
                        self.requests += 1
                        await s_writer.drain()
                if not cut.is_set() and s_writer.can_write_eof():
                    s_writer.write_eof()
            except (ConnectionError, OSError):
                reset()

        async def downstream() -> None:  # server -> client, reply by reply
            buf = bytearray()
            try:
                while data := await s_reader.read(65536):
                    buf += data
                    while (end := resp_end(buf)) is not None:
                        message, buf[:end] = bytes(buf[:end]), b""
                        fault = actions.popleft() if actions else None
                        if fault is not None and fault.kind == "drop":
                            continue
                        if fault is not None and fault.kind == "reset":
                            reset()
                            return
                        if fault is not None and fault.kind == "error":
                            message = b"-ERR injected by the fault proxy\r\n"
                        if fault is not None and fault.kind == "delay_reply":
                            await asyncio.sleep(fault.seconds)
                        if c_writer.is_closing():
                            continue
                        c_writer.write(message)
                        await c_writer.drain()
            except (ConnectionError, OSError):
                pass
            reset()

        self._spawn(upstream())
        self._spawn(downstream())
