"""Dropping duplicates.

:class:`Dedupe`: an event seen twice on one connection (possible only after a failure, e.g. a
worker crash and a replay after resume) is recognised by ``(conn, session, seq)``.
:class:`CrossDedupe`: the same platform event delivered by two connection sets (a reshard's switch)
is recognised by its content identity, for the events the worker marked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
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


def raw_identity(name: str, data: bytes) -> Hashable:
    """Any platform's cross-set identity of an event: its name and the hash of its raw body.

    The hash of ``bytes`` is SipHash with this process's random key: both copies of an event are
    hashed in the same process (the bot's), so equal bodies give equal hashes, and nobody outside
    can craft two bodies that collide.
    """
    return (name, hash(data))


_Key = tuple[str, Hashable]
#: (remembered at, generation, key): one occurrence.
_Record = tuple[float, int, _Key]


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

    __slots__ = ("_order", "_unmatched", "max_entries", "window_s")

    def __init__(self, window_s: float = 30.0, max_entries: int = 500_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        # One record per occurrence remembered, (remembered at, generation, key), oldest first:
        # what expiry and the bound walk.
        self._order: deque[_Record] = deque()
        # key -> the unmatched occurrences of one identity: its record, or a list of them (oldest
        # first) when one set sent it more than once. They are always of one generation: an
        # occurrence from another generation would have matched one of them instead of joining
        # them. A matched occurrence's record stays in the order until the walk reaches it and
        # finds it is no longer here (compared by identity: records are never equal by accident).
        self._unmatched: dict[_Key, _Record | list[_Record]] = {}

    def __len__(self) -> int:
        """Unmatched occurrences remembered."""
        return sum(len(entry) if isinstance(entry, list) else 1 for entry in self._unmatched.values())

    def duplicate(self, platform: str, generation: int, identity: Hashable, now: float) -> bool:
        """Whether this occurrence is the other set's copy of one remembered (and consume that),
        else remember it."""
        order = self._order
        if order and order[0][0] <= now - self.window_s:
            self._expire(now - self.window_s)
        key = (platform, identity)
        unmatched = self._unmatched
        entry = unmatched.get(key)
        record = (now, generation, key)
        if entry is None:
            unmatched[key] = record
        elif type(entry) is tuple:
            if entry[1] != generation:
                del unmatched[key]
                return True
            unmatched[key] = [entry, record]
        else:
            assert isinstance(entry, list)
            if entry[0][1] != generation:
                del entry[0]
                if not entry:
                    del unmatched[key]
                return True
            entry.append(record)
        order.append(record)
        if len(order) > self.max_entries:
            self._forget(order.popleft())
        return False

    def _expire(self, cutoff: float) -> None:
        order = self._order
        while order and order[0][0] <= cutoff:
            self._forget(order.popleft())

    def _forget(self, record: _Record) -> None:
        # Matching consumes the oldest and records leave oldest first: an occurrence is still
        # remembered iff it is its key's record, or heads its key's list.
        key = record[2]
        entry = self._unmatched.get(key)
        if entry is record:
            del self._unmatched[key]
        elif isinstance(entry, list) and entry[0] is record:
            del entry[0]
            if not entry:
                del self._unmatched[key]
