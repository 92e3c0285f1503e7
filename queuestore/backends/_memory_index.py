"""Sorted per-state indexes of the memory store.

Each state of a queue (ready, delayed, in flight, dead) and the TTL schedule is
an :class:`Index`: a list of ``(rank, seq, job_id)`` kept sorted. ``rank`` is
what the state is ordered by (``-priority`` for ready, the due time for delayed,
the lease deadline for in flight, 0 for dead) and ``seq`` a namespace-wide
counter that breaks ties in arrival order, so FIFO within a rank is just the
sort order. A position ``(rank, seq)`` is unique, which lets a paged walk resume
after a cursor with one bisection instead of a rescan.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

__all__ = ["Entry", "Index", "Position"]

Entry = tuple[float, int, str]
Position = tuple[float, int]


def _pos(entry: Entry) -> Position:
    return entry[0], entry[1]


class Index:
    """Entries ``(rank, seq, job_id)`` in ascending ``(rank, seq)`` order."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: list[Entry] = []

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._items)

    def add(self, rank: float, seq: int, job_id: str) -> None:
        """Insert an entry at its place (O(1) when it goes last, the usual case)."""
        entry = (rank, seq, job_id)
        if not self._items or _pos(self._items[-1]) < (rank, seq):
            self._items.append(entry)
        else:
            bisect.insort(self._items, entry)

    def remove(self, rank: float, seq: int, job_id: str) -> None:
        """Remove an entry that is known to be present."""
        i = bisect.bisect_left(self._items, (rank, seq, job_id))
        if i >= len(self._items) or self._items[i] != (rank, seq, job_id):
            raise KeyError(job_id)  # an internal inconsistency, never a user error
        del self._items[i]

    def first(self) -> Entry | None:
        """The smallest entry, or None."""
        return self._items[0] if self._items else None

    def at(self, offset: int) -> Entry | None:
        """The entry at ``offset`` from the start, or None."""
        return self._items[offset] if 0 <= offset < len(self._items) else None

    def head(self, count: int) -> list[Entry]:
        """The first ``count`` entries (a copy)."""
        return self._items[:count]

    def due(self, now: float) -> list[Entry]:
        """Remove and return every entry whose rank is ``<= now``, in order."""
        i = bisect.bisect_right(self._items, now, key=lambda e: e[0])
        taken = self._items[:i]
        del self._items[:i]
        return taken

    def page(self, after: Position | None, count: int, reverse: bool) -> list[Entry]:
        """Up to ``count`` entries strictly after ``after`` in walk order.

        Forward walks ascend and ``after`` is a lower bound; a reverse walk
        descends and ``after`` is an upper bound. ``None`` starts at the end
        the walk starts from.
        """
        if not reverse:
            start = 0 if after is None else bisect.bisect_right(self._items, after, key=_pos)
            return self._items[start : start + count]
        end = len(self._items) if after is None else bisect.bisect_left(self._items, after, key=_pos)
        return self._items[max(0, end - count) : end][::-1]
