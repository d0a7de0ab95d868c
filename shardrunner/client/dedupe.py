"""Dropping duplicates.

:class:`Dedupe`: an event seen twice on one connection (possible only after a failure, e.g. a
worker crash and a replay after resume) is recognised by ``(conn, session, seq)``.
:class:`CrossDedupe`: the same platform event delivered by two connection sets (a reshard's switch)
is recognised by its content identity, for the events the worker marked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Any, Final

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


def raw_identity(name: str, data: bytes) -> Hashable:
    """Any platform's cross-set identity of an event: its name and the hash of its raw body.

    The hash of ``bytes`` is SipHash with this process's random key: both copies of an event are
    hashed in the same process (the bot's), so equal bodies give equal hashes, and nobody outside
    can craft two bodies that collide.
    """
    return (name, hash(data))


class CrossDedupe:
    """Drops the second copy of an event that two connection sets of a platform both delivered.

    During a reshard's switch (and for a bot that returns after being down through it) the same
    platform event can arrive twice: once from the old set and once from the new one, with
    different connections, sessions and seqs. The worker marks those events; for each of them the
    client asks :meth:`duplicate` with the event's content identity (docs/resharding.md).

    The matching is a multiset across generations: an occurrence of identity ``x`` from
    generation ``g`` is a duplicate iff an unmatched occurrence of ``x`` from another generation of
    the platform is remembered, which is then consumed (the oldest first); otherwise it is
    remembered. So two equal identities from one generation are two events, and each pairs with one
    copy from the other set. Occurrences are forgotten ``window_s`` after they were remembered
    (the caller's clock, ``now``), and the oldest go first when more than ``max_entries`` records
    are kept (a record stays until it expires or is pushed out, even once it is matched).
    """

    __slots__ = ("_order", "_serial", "_unmatched", "max_entries", "window_s")

    def __init__(self, window_s: float = 30.0, max_entries: int = 500_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        # (platform, identity) -> [generation, serial, serial, ...]: the unmatched occurrences of
        # one identity, oldest first. They are always of one generation: an occurrence from another
        # generation would have matched one of them instead of joining them.
        self._unmatched: dict[tuple[str, Hashable], list[Any]] = {}
        # (remembered at, serial, key) per occurrence, oldest first: what expiry and the bound
        # walk. A matched occurrence leaves its record behind; its serial no longer heads its key's
        # list, which is how the walk tells.
        self._order: deque[tuple[float, int, tuple[str, Hashable]]] = deque()
        self._serial = 0

    def __len__(self) -> int:
        """Unmatched occurrences remembered."""
        return sum(len(entry) - 1 for entry in self._unmatched.values())

    def duplicate(self, platform: str, generation: int, identity: Hashable, now: float) -> bool:
        """Whether this occurrence is the other set's copy of one remembered (and consume that),
        else remember it."""
        order = self._order
        if order and order[0][0] <= now - self.window_s:
            self._expire(now - self.window_s)
        key = (platform, identity)
        entry = self._unmatched.get(key)
        if entry is not None and entry[0] != generation:
            del entry[1]
            if len(entry) == 1:
                del self._unmatched[key]
            return True
        self._serial += 1
        if entry is None:
            self._unmatched[key] = [generation, self._serial]
        else:
            entry.append(self._serial)
        order.append((now, self._serial, key))
        if len(order) > self.max_entries:
            self._forget(*order.popleft()[1:])
        return False

    def _expire(self, cutoff: float) -> None:
        order = self._order
        while order and order[0][0] <= cutoff:
            self._forget(*order.popleft()[1:])

    def _forget(self, serial: int, key: tuple[str, Hashable]) -> None:
        entry = self._unmatched.get(key)
        # Matching consumes the head and records leave in serial order: the occurrence is still
        # remembered iff it heads its key's list.
        if entry is not None and entry[1] == serial:
            del entry[1]
            if len(entry) == 1:
                del self._unmatched[key]
