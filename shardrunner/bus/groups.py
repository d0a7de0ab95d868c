"""The router's tables: consumer groups, their members, the bounds, and how a key picks a member.

Kept apart from :mod:`.router` (the rules) so each stays readable; nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from shardrunner.bus import protocol as p
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import PREFIX, WILDCARD

#: Among a subscription's names: every platform event (as ``events=None``).
ALL = "*"
#: An event and its flags (:data:`REDELIVERED`, :data:`DEDUPE`).
Item = tuple[Event, int]
#: Sent before to a member that failed: it may have been processed already.
REDELIVERED = 1
#: Published while its connection was in ``dedupe`` mode: the client checks it against the events
#: of the platform's other connection sets (generations).
DEDUPE = 2
#: A group's gap reports go out at most this often (what is dropped meanwhile joins the next), so a
#: flood past a group's bounds sends each member one Gap per connection session a second, not one
#: per turn of the worker's loop.
GAP_EVERY_S: Final = 1.0
#: The flags of a marked item also carry when the worker received it (wall clock, milliseconds),
#: shifted past the two flag bits: ``flags >> STAMP_SHIFT``.
STAMP_SHIFT = 2


@dataclass(slots=True)
class Limits:
    """Per-group bounds on what a worker holds for it."""

    max_events: int = 100_000
    max_bytes: int = 256 * 1024 * 1024
    max_inflight: int = 4096
    #: Bytes of event bodies sent and not acknowledged, per member: with big events (a large
    #: GUILD_CREATE) the window in events alone would let a stuck bot pin gigabytes. A member with
    #: nothing in flight is always sent one event, however big.
    max_inflight_bytes: int = 32 * 1024 * 1024
    batch_size: int = 64
    #: Seconds a batch may stay sent and unacknowledged by a member that is still alive (a stuck
    #: handler): past that its in-flight events are given up, counted as dropped and told as a gap,
    #: so a stuck bot cannot pin the worker's memory (its holds) and the resume point for ever.
    ack_timeout: float = 120.0


@dataclass(eq=False, slots=True)
class Member:
    """One member of a group on this worker: what it is sent, what it has not acknowledged yet."""

    id: str
    identity: bytes
    events: frozenset[str] | None
    last_seen: float
    next_batch: int = 1  # one past the last batch number sent to it (numbers are the router's)
    #: The highest batch it acknowledged (acks are cumulative: one below this goes backwards).
    acked: int = 0
    inflight: deque[tuple[int, list[Item]]] = field(default_factory=deque)
    inflight_events: int = 0
    inflight_bytes: int = 0
    waiting: deque[Item] = field(default_factory=deque)
    #: When each in-flight batch was sent (the router's monotonic clock), oldest first.
    sent_at: deque[float] = field(default_factory=deque)
    #: The lifecycle events it named in its events (``events`` holds the platform's).
    lifecycle: frozenset[str] = frozenset()
    #: Its events in flight were given up (ack timeout): nothing more is sent until it acknowledges.
    stalled: bool = False


@dataclass(eq=False)
class Group:
    """One consumer group on this worker: its members, its backlog, what it dropped (for gaps)."""

    name: str
    limits: Limits
    events: frozenset[str] | None = None
    durable: bool = True
    members: dict[str, Member] = field(default_factory=dict)
    backlog: deque[Item] = field(default_factory=deque)
    held_events: int = 0  # backlog + waiting
    held_bytes: int = 0
    dropped: dict[tuple[ConnKey, str], list[list[int]]] = field(default_factory=dict)
    dropped_total: int = 0
    delivered: int = 0  # acknowledged by a member
    redelivered: int = 0  # sent again after their member left or went silent
    owners: dict[object, Member] = field(default_factory=dict)
    #: The lifecycle events (``shardrunner.*``) its members asked for: they are opt-in.
    lifecycle: frozenset[str] = frozenset()
    #: When its gap reports last went out (the router's clock).
    gaps_at: float = float("-inf")

    def owner(self, key: object) -> Member:
        member = self.owners.get(key)
        if member is None:
            member = max(self.members.values(), key=lambda m: score(m.id, key))
            self.owners[key] = member
        return member

    def subscribes(self, name: str) -> bool:
        """Whether the group gets events of this name (the router caches the answer per name).

        Lifecycle events are opt-in: ``events=None`` (or ``"*"`` among them) means every platform
        event, not shardrunner's own; a group gets those its members name, or all of them with
        ``shardrunner.*``."""
        if name.startswith(PREFIX):
            lifecycle = self.lifecycle
            return name in lifecycle or WILDCARD in lifecycle
        return self.events is None or name in self.events

    def owes(self) -> int:
        """Events held for this group: waiting, in its backlog, or sent and not acknowledged."""
        return self.held_events + sum(m.inflight_events for m in self.members.values())


def lost(group: Group, event: Event) -> None:
    """Count an event the group will not get (dropped or given up) in the ranges of its gaps."""
    group.dropped_total += 1
    ranges = group.dropped.setdefault((event.conn, event.session), [])
    if ranges and ranges[-1][1] + 1 == event.seq:
        ranges[-1][1] = event.seq
    else:
        ranges.append([event.seq, event.seq])


def gaps(group: Group, now: float) -> list[bytes]:
    """The group's gap reports, one per connection session, encoded; what they report is forgotten."""
    out = [
        p.encode(
            p.Gap(group.name, conn, session, sum(b - a + 1 for a, b in ranges), [(a, b) for a, b in ranges])
        )
        for (conn, session), ranges in group.dropped.items()
    ]
    group.dropped.clear()
    group.gaps_at = now
    return out


def give_up(group: Group, member: Member) -> list[Item]:
    """A stuck member's events in flight, taken from it and counted as lost. Nothing more is sent
    to it until it acknowledges something (its events wait in its queue, within the bounds)."""
    items = [item for _, batch in member.inflight for item in batch]
    for event, _ in items:
        lost(group, event)
    member.inflight.clear()
    member.sent_at.clear()
    member.inflight_events = member.inflight_bytes = 0
    member.stalled = True
    return items


def take(member: Member, limits: Limits) -> list[Item]:
    """The next batch for a member, popped from its waiting queue: at most ``batch_size`` events,
    within its in-flight windows in events and in bytes (one event however big when nothing is in
    flight, so a body larger than the bytes window still goes). Empty: nothing to send now."""
    waiting = member.waiting
    n = min(len(waiting), limits.batch_size, limits.max_inflight - member.inflight_events)
    if n <= 0 or member.stalled:
        return []
    items = [waiting.popleft() for _ in range(n)]
    room = limits.max_inflight_bytes - member.inflight_bytes
    if sum(len(e.data) for e, _ in items) <= room:
        return items  # the usual case
    keep = 0
    for event, _ in items:
        room -= len(event.data)
        if room < 0 and (keep or member.inflight_events):
            break
        keep += 1
    waiting.extendleft(reversed(items[keep:]))
    return items[:keep]


def stats(group: Group, now: float) -> p.GroupStats:
    """What the worker reports of a group: its queues, its counters, its oldest unacknowledged
    batch's age (the acknowledgement lag) at ``now``."""
    members = group.members.values()
    oldest = min((m.sent_at[0] for m in members if m.sent_at), default=now)
    return p.GroupStats(
        name=group.name,
        events=subscription(group.events, group.lifecycle),
        members=len(group.members),
        held_events=group.held_events,
        held_bytes=group.held_bytes,
        inflight=sum(m.inflight_events for m in members),
        dropped=group.dropped_total,
        delivered=group.delivered,
        redelivered=group.redelivered,
        ack_lag=max(0.0, now - oldest),
    )


def batch(group: str, batch_no: int, items: list[Item], window_ms: int) -> bytes:
    """One encoded :class:`~.protocol.Batch` of ``items``, with the indexes of the redelivered and
    the marked ones (and the marks' stamps and window) when any item is flagged."""
    events = [e for e, _ in items]
    flagged = [i for i, (_, flags) in enumerate(items) if flags]
    if not flagged:
        return p.encode(p.Batch(group, batch_no, events))
    marked = [i for i in flagged if items[i][1] & DEDUPE]
    return p.encode(
        p.Batch(
            group,
            batch_no,
            events,
            [i for i in flagged if items[i][1] & REDELIVERED],
            marked,
            [items[i][1] >> STAMP_SHIFT for i in marked],
            window_ms if marked else 0,
        )
    )


def split_events(events: Iterable[str] | None) -> tuple[frozenset[str] | None, frozenset[str]]:
    """A join's (or a remembered group's) ``events`` as (the platform's names, None: all of them;
    the lifecycle names). ``"*"`` among them means every platform event, so a subscription to all
    of them plus some lifecycle events is a list too: ``["*", "shardrunner.ready"]``."""
    if events is None:
        return None, frozenset()
    names = frozenset(events)
    lifecycle = frozenset(n for n in names if n.startswith(PREFIX))
    return (None if ALL in names else names - lifecycle), lifecycle


def subscription(events: frozenset[str] | None, lifecycle: frozenset[str]) -> list[str] | None:
    """The inverse of :func:`split_events`: what a group is remembered and declared by."""
    if events is None:
        return [ALL, *sorted(lifecycle)] if lifecycle else None
    return sorted(events | lifecycle)


def score(member: str, key: object) -> bytes:
    return hashlib.blake2b(f"{member}\x00{key}".encode(), digest_size=8).digest()


def key_of(event: Event) -> object:
    """The key that picks an event's member: its routing key, else ``(platform, shard)``.

    Events without a routing key (Discord: DMs) stay together per shard number, across connection
    sets: during a reshard shard 0 of the old and of the new set deliver the same DMs, and both
    copies must reach the one member (one process) whose client drops the second. A tuple never
    equals a routing key (an int or a str), so the two cannot share an owner by accident.
    """
    key = event.key
    if key is not None:
        return key
    conn = event.conn
    return (conn.platform, conn.shard)
