"""Dropping duplicates: an event seen twice (possible only after a failure, e.g. a worker crash and
a replay after resume) is recognised by ``(conn, session, seq)``."""

from __future__ import annotations

from collections import deque
from typing import Final

from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

#: Seqs remembered per (conn, session) to drop duplicates.
DEDUPE_WINDOW: Final = 1 << 16


class Dedupe:
    """The last :data:`DEDUPE_WINDOW` seqs of every connection's session."""

    __slots__ = ("_conn", "_entry", "_seen", "_session", "window")

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self.window = window
        self._seen: dict[tuple[ConnKey, str], tuple[set[int], deque[int]]] = {}
        # The entry of the last event: a batch mostly holds runs of one connection, and comparing
        # its (freshly decoded, so never identical) key costs less than hashing it for the lookup.
        self._conn: ConnKey | None = None
        self._session = ""
        self._entry: tuple[set[int], deque[int]] | None = None

    def duplicate(self, event: Event) -> bool:
        """Whether this event was seen before (and remember it if not)."""
        entry = self._entry
        if entry is None or event.conn != self._conn or event.session != self._session:
            key = (event.conn, event.session)
            entry = self._seen.get(key)
            if entry is None:
                entry = self._seen[key] = (set(), deque())
            self._conn, self._session, self._entry = event.conn, event.session, entry
        seen, order = entry
        seq = event.seq
        if seq in seen:
            return True
        seen.add(seq)
        order.append(seq)
        if len(order) > self.window:
            seen.discard(order.popleft())
        return False
