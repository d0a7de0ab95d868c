"""Dropping duplicates.

:class:`Dedupe`: an event seen twice on one connection (possible only after a failure, e.g. a
worker crash and a replay after resume) is recognised by ``(conn, session, seq)``.
:class:`CrossDedupe`: the same platform event delivered by two connection sets (a reshard's switch)
is recognised by its content identity, for the events the worker marked.
:class:`Epochs`: an event of a connection's superseded holder (several hosts: a lower lease epoch
than one seen of that connection) is stale.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Final

from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

#: Seqs remembered per (conn, session) to drop duplicates.
DEDUPE_WINDOW: Final = 1 << 16
#: What :meth:`Dedupe.check` and :meth:`Epochs.check` say of an event.
FRESH: Final = 0
DUPLICATE: Final = 1
#: Of a connection's superseded holder (a lower lease epoch than one seen of it).
STALE: Final = 2


class Dedupe:
    """The last :data:`DEDUPE_WINDOW` seqs of every connection's session, and (:meth:`check`) the
    highest lease epoch of every connection as :class:`Epochs` keeps it."""

    __slots__ = ("_conn", "_entry", "_high", "_highest", "_seen", "_session", "window")

    def __init__(self, window: int = DEDUPE_WINDOW) -> None:
        self.window = window
        self._seen: dict[tuple[ConnKey, str], tuple[set[int], deque[int]]] = {}
        # The entry of the last event: a batch mostly holds runs of one connection, and comparing
        # its (freshly decoded, so never identical) key costs less than hashing it for the lookup.
        self._conn: ConnKey | None = None
        self._session = ""
        self._entry: tuple[set[int], deque[int]] | None = None
        self._highest: dict[ConnKey, int] = {}
        self._high = 0  # of the last event's connection

    def check(self, event: Event) -> int:
        """:data:`STALE`, :data:`DUPLICATE` or :data:`FRESH` (then the event is remembered).

        The epoch rule of :class:`Epochs`, on the connection this already compares: one attribute
        read more per event."""
        entry = self._entry
        conn = event.conn
        if entry is None or conn != self._conn or event.session != self._session:
            key = (conn, event.session)
            entry = self._seen.get(key)
            if entry is None:
                entry = self._seen[key] = (set(), deque())
            self._conn, self._session, self._entry = conn, event.session, entry
            self._high = self._highest.get(conn, 0)
        epoch = event.epoch
        if epoch != self._high:
            if epoch < self._high:
                return STALE
            self._highest[conn] = self._high = epoch
        seen, order = entry
        seq = event.seq
        if seq in seen:
            return DUPLICATE
        seen.add(seq)
        order.append(seq)
        if len(order) > self.window:
            seen.discard(order.popleft())
        return FRESH

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


class Epochs:
    """The highest lease epoch seen of every connection; an event of a lower one is stale.

    Several hosts: a host whose lease on a block lapsed may still have sent events when the next
    holder (a higher epoch, from Redis) resumed the block; the next holder's replay carries them
    again, so the old holder's late copies are dropped. An epoch 0 after a higher one is stale too
    (a host without leases after one with: not expected, but the rule stays simple).
    """

    __slots__ = ("_conn", "_high", "_highest")

    def __init__(self) -> None:
        self._highest: dict[ConnKey, int] = {}
        # The last event's connection and its highest epoch: batches hold runs of one connection.
        self._conn: ConnKey | None = None
        self._high = 0

    def check(self, event: Event) -> int:
        """:data:`STALE` if the event comes from a superseded holder, else :data:`FRESH` (and a
        higher epoch is remembered). For a client that keeps duplicates (else :meth:`Dedupe.check`)."""
        epoch = event.epoch
        conn = event.conn
        if conn != self._conn:
            self._conn = conn
            self._high = self._highest.get(conn, 0)
        high = self._high
        if epoch == high:
            return FRESH
        if epoch < high:
            return STALE
        self._highest[conn] = self._high = epoch
        return FRESH


def raw_identity(name: str, data: bytes) -> Hashable:
    """Any platform's cross-set identity of an event: its name and the hash of its raw body.

    The hash of ``bytes`` is SipHash with this process's random key: both copies of an event are
    hashed in the same process (the bot's), so equal bodies give equal hashes, and nobody outside
    can craft two bodies that collide.
    """
    return (name, hash(data))


_Key = tuple[str, Hashable]
#: (remembered at, generation, key, stamp): one occurrence; the stamp is when its worker received it
#: (wall clock, milliseconds).
_Record = tuple[float, Hashable, _Key, int]


class CrossDedupe:
    """Drops the second copy of an event that two connection sets of a platform both delivered.

    During a reshard's switch (and for a bot that returns after being down through it) the same
    platform event can arrive twice: once from the old set and once from the new one, with
    different connections, sessions and seqs. The worker marks those events, with when it received
    each; for each of them the client asks :meth:`duplicate` with the event's content identity
    (docs/resharding.md).

    The matching is a multiset across generations: an occurrence of identity ``x`` from
    generation ``g``, received by its worker at ``stamp``, is a duplicate iff an unmatched
    occurrence of ``x`` from another generation of the platform is remembered whose stamp is within
    ``window`` ms of it; that one is consumed (the oldest first). Otherwise it is remembered. So
    two equal identities from one generation are two events, each pairing with one copy from the
    other set; and two equal bodies received far apart (the old set's before the new set delivered,
    the new set's after the old set stopped) are two events too, however close they arrive here.
    Occurrences are forgotten ``window_s`` after they were remembered (the caller's clock, ``now``),
    and the oldest go first when more than ``max_entries`` are kept.
    """

    __slots__ = ("_order", "_unmatched", "max_entries", "window_s")

    def __init__(self, window_s: float = 30.0, max_entries: int = 500_000) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        #: Every occurrence remembered, oldest first: what expiry and the bound walk. A matched one
        #: stays here until the walk finds it is no longer in its key's list (compared by identity:
        #: records are never equal by accident).
        self._order: deque[_Record] = deque()
        #: key -> the unmatched occurrences of one identity, oldest first (mostly one).
        self._unmatched: dict[_Key, list[_Record]] = {}

    def __len__(self) -> int:
        """Unmatched occurrences remembered."""
        return sum(len(entry) for entry in self._unmatched.values())

    def duplicate(
        self,
        platform: str,
        generation: Hashable,
        identity: Hashable,
        now: float,
        stamp: int = 0,
        window: int = 0,
    ) -> bool:
        """Whether this occurrence is the other set's copy of one remembered (and consume that),
        else remember it. ``window`` 0: any two stamps match. ``generation`` names the source the
        copies must differ in: the set's generation on Discord, the reading connection on Twitch
        (a backup reader is another connection of the same set)."""
        order = self._order
        if order and order[0][0] <= now - self.window_s:
            self._expire(now - self.window_s)
        key = (platform, identity)
        entry = self._unmatched.get(key)
        if entry is not None:
            for i, other in enumerate(entry):
                if other[1] != generation and (not window or abs(other[3] - stamp) <= window):
                    del entry[i]
                    if not entry:
                        del self._unmatched[key]
                    return True
        record = (now, generation, key, stamp)
        if entry is None:
            self._unmatched[key] = [record]
        else:
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
        key = record[2]
        entry = self._unmatched.get(key)
        if entry is None:
            return
        for i, other in enumerate(entry):
            if other is record:
                del entry[i]
                if not entry:
                    del self._unmatched[key]
                return
