"""Sorted per-state indexes of the memory store.

Each state of a queue (ready, delayed, in flight, dead) and the TTL schedule is
an :class:`Index`: entries ``(rank, seq, job_id)`` kept in ascending order.
``rank`` is what the state is ordered by (``-priority`` for ready, the due time
for delayed, the lease deadline for in flight, 0 for dead) and ``seq`` a
namespace-wide counter that breaks ties in arrival order, so FIFO within a rank
is just the sort order. A position ``(rank, seq)`` is unique, which lets a paged
walk resume after a cursor with one bisection instead of a rescan.

The entries live in a list of short sorted *chunks* (at most ``2 * load``
entries each, like ``sortedcontainers.SortedList``) with a moving start: the
chunks before ``_lo`` are spent and dropped in bulk once they are half of the
chunk list. So no operation moves more than ``O(load)`` entries plus, rarely,
the chunk list itself (amortized ``O(1)`` per chunk):

* taking the head (dequeue, a due lease or delayed job, the oldest TTL) and
  appending at the tail (enqueue, a new lease, a death) cost ``O(1)`` amortized,
  whatever the queue's depth -- a plain sorted list moved every entry after
  the head on each dequeue;
* insert and remove anywhere (a priority job, an ack out of order, ``move``,
  a migration's hold) cost ``O(log n + load)``;
* a page after a cursor costs ``O(log n + count)``; ``at(offset)`` walks
  ``min(offset, n - offset) / load`` chunks.

``work`` counts the entry slots that edits moved or copied (a proxy for the
memmoves behind ``list.insert``/``del``); tests use it to check the shape of the
costs without timing anything.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterator

__all__ = ["DEFAULT_LOAD", "Entry", "Index", "Position"]

Entry = tuple[float, int, str]
Position = tuple[float, int]

#: chunks hold ``load`` to ``2 * load`` entries (fewer once entries are removed)
DEFAULT_LOAD = 256


def _pos(entry: Entry) -> Position:
    return entry[0], entry[1]


class Index:
    """Entries ``(rank, seq, job_id)`` in ascending ``(rank, seq)`` order."""

    __slots__ = ("_chunks", "_len", "_lo", "_load", "_maxes", "work")

    def __init__(self, load: int = DEFAULT_LOAD) -> None:
        if load < 2:
            raise ValueError("load must be >= 2")
        self._load = load
        self._chunks: list[list[Entry]] = []  # live chunks are _chunks[_lo:], none empty
        self._maxes: list[Entry] = []  # _maxes[i] == _chunks[i][-1] for live chunks
        self._lo = 0
        self._len = 0
        self.work = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[Entry]:
        return itertools.chain.from_iterable(self._chunks[self._lo :])

    # -- chunk bookkeeping ------------------------------------------------------------
    def _drop_chunk(self, ci: int) -> None:
        """Forget the (now empty) chunk ``ci``."""
        if ci == self._lo:
            self._chunks[ci] = []  # spent; released by _compact
            self._lo += 1
            self._compact()
        else:
            self.work += len(self._chunks) - ci
            del self._chunks[ci]
            del self._maxes[ci]

    def _compact(self) -> None:
        """Drop spent chunks once they are half the list (amortized O(1) per chunk)."""
        lo = self._lo
        if lo == len(self._chunks):
            self._chunks.clear()
            self._maxes.clear()
            self._lo = 0
        elif lo * 2 >= len(self._chunks) and lo >= 8:
            self.work += len(self._chunks) - lo
            del self._chunks[:lo]
            del self._maxes[:lo]
            self._lo = 0

    def _split(self, ci: int) -> None:
        """Halve chunk ``ci`` when it has outgrown ``2 * load``."""
        chunk = self._chunks[ci]
        if len(chunk) <= 2 * self._load:
            return
        half = len(chunk) // 2
        tail = chunk[half:]
        del chunk[half:]
        self._chunks.insert(ci + 1, tail)
        self._maxes.insert(ci + 1, self._maxes[ci])
        self._maxes[ci] = chunk[-1]
        self.work += len(tail) + len(self._chunks) - ci

    def _merge(self, ci: int) -> None:
        """Fold a small chunk ``ci`` (not the head) into the one before it."""
        prev = self._chunks[ci - 1]
        chunk = self._chunks[ci]
        prev.extend(chunk)
        self._maxes[ci - 1] = self._maxes[ci]
        self.work += len(chunk) + len(self._chunks) - ci
        del self._chunks[ci]
        del self._maxes[ci]
        self._split(ci - 1)

    # -- edits ------------------------------------------------------------------------
    def add(self, rank: float, seq: int, job_id: str) -> None:
        """Insert an entry at its place (O(1) when it goes last, the usual case)."""
        entry = (rank, seq, job_id)
        maxes = self._maxes
        if len(maxes) == self._lo:  # empty
            self._chunks.append([entry])
            maxes.append(entry)
            self._len += 1
            return
        if maxes[-1] < entry:  # goes last
            ci = len(maxes) - 1
            chunk = self._chunks[ci]
            chunk.append(entry)
            maxes[ci] = entry
        else:
            ci = bisect.bisect_left(maxes, entry, self._lo)
            chunk = self._chunks[ci]
            i = bisect.bisect_left(chunk, entry)
            self.work += len(chunk) - i
            chunk.insert(i, entry)
        self._len += 1
        if len(chunk) > 2 * self._load:
            self._split(ci)

    def remove(self, rank: float, seq: int, job_id: str) -> None:
        """Remove an entry that is known to be present."""
        entry = (rank, seq, job_id)
        lo = self._lo
        ci = lo if self._len and self._chunks[lo][0] == entry else bisect.bisect_left(self._maxes, entry, lo)
        chunk = self._chunks[ci] if ci < len(self._chunks) else []
        i = bisect.bisect_left(chunk, entry)
        if i >= len(chunk) or chunk[i] != entry:
            raise KeyError(job_id)  # an internal inconsistency, never a user error
        self.work += len(chunk) - i
        del chunk[i]
        self._len -= 1
        if not chunk:
            self._drop_chunk(ci)
            return
        if i == len(chunk):
            self._maxes[ci] = chunk[-1]
        if ci > lo and len(chunk) * 4 < self._load:
            self._merge(ci)

    # -- reads ------------------------------------------------------------------------
    def first(self) -> Entry | None:
        """The smallest entry, or None."""
        return self._chunks[self._lo][0] if self._len else None

    def at(self, offset: int) -> Entry | None:
        """The entry at ``offset`` from the start, or None; the chunks are walked from the
        nearer end, so either end is found in ``O(1)``."""
        if not 0 <= offset < self._len:
            return None
        if offset >= self._len // 2:
            back = self._len - 1 - offset  # the place counted from the last entry
            for i in range(len(self._chunks) - 1, self._lo - 1, -1):
                chunk = self._chunks[i]
                if back < len(chunk):
                    return chunk[len(chunk) - 1 - back]
                back -= len(chunk)
            return None  # pragma: no cover - offset < len
        for chunk in itertools.islice(self._chunks, self._lo, None):
            if offset < len(chunk):
                return chunk[offset]
            offset -= len(chunk)
        return None  # pragma: no cover - offset < len

    def head(self, count: int) -> list[Entry]:
        """The first ``count`` entries (a copy)."""
        out: list[Entry] = []
        for chunk in itertools.islice(self._chunks, self._lo, None):
            if len(out) >= count:
                break
            out.extend(chunk[: count - len(out)])
        return out

    def due(self, now: float) -> list[Entry]:
        """Remove and return every entry whose rank is ``<= now``, in order."""
        taken: list[Entry] = []
        while self._len:
            lo = self._lo
            chunk = self._chunks[lo]
            if chunk[0][0] > now:
                break
            if self._maxes[lo][0] <= now:  # the whole chunk is due
                taken.extend(chunk)
                self._len -= len(chunk)
                self._drop_chunk(lo)
                continue
            i = bisect.bisect_right(chunk, now, key=lambda e: e[0])
            taken.extend(chunk[:i])
            self.work += len(chunk)
            del chunk[:i]
            self._len -= i
            break
        return taken

    def page(self, after: Position | None, count: int, reverse: bool) -> list[Entry]:
        """Up to ``count`` entries strictly after ``after`` in walk order.

        Forward walks ascend and ``after`` is a lower bound; a reverse walk
        descends and ``after`` is an upper bound. ``None`` starts at the end
        the walk starts from.
        """
        out: list[Entry] = []
        lo, chunks = self._lo, self._chunks
        if not self._len or count <= 0:
            return out
        if not reverse:
            if after is None:
                ci, i = lo, 0
            else:
                ci = bisect.bisect_right(self._maxes, after, lo, key=_pos)
                if ci == len(chunks):
                    return out
                i = bisect.bisect_right(chunks[ci], after, key=_pos)
            while ci < len(chunks) and len(out) < count:
                out.extend(chunks[ci][i : i + count - len(out)])
                ci, i = ci + 1, 0
            return out
        if after is None:
            ci, end = len(chunks) - 1, len(chunks[-1])
        else:
            ci = bisect.bisect_left(self._maxes, after, lo, key=_pos)
            if ci == len(chunks):
                ci, end = ci - 1, len(chunks[-1])
            else:
                end = bisect.bisect_left(chunks[ci], after, key=_pos)
        while ci >= lo and len(out) < count:
            chunk = chunks[ci]
            start = max(0, end - (count - len(out)))
            out.extend(reversed(chunk[start:end]))
            ci -= 1
            end = len(chunks[ci]) if ci >= lo else 0
        return out
