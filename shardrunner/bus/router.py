"""Delivery inside a worker: which member of which consumer group gets each event, and what is
still owed to whom. No sockets here: :class:`Router` takes events and control messages and returns
the frames to send, so every rule can be tested on its own (see docs/delivery.md).

Rules:

- Every group receives every event it subscribes to; events no group subscribes to are dropped
  right after the envelope peek.
- Within a group, each routing key (the platform's: see ``protocol.envelope.RoutingKey``) belongs
  to one member, chosen by rendezvous hashing: a member joining or leaving moves only its share of
  the keys, and one key's events stay in order on one member. Events without a routing key stay
  together per platform and shard number, whatever the connection set.
- A member has at most ``max_inflight`` unacknowledged events (and ``max_inflight_bytes``); the
  rest waits, unsent. Acks are cumulative by batch. A member that leaves or goes silent has its
  unacknowledged events redelivered (marked) and its waiting ones routed anew; one stuck past
  ``ack_timeout`` has them given up (a gap).
- A group without members keeps its events in a backlog. Backlog and waiting events together are
  bounded (events and bytes); past that the oldest are dropped, counted, and reported to the
  group as gaps (which seqs) once it has a member again.
- A connection can be set to another delivery mode than ``live`` (a reshard, see
  :class:`~shardrunner.bus.protocol.Delivery`): ``hold`` and ``mute`` keep its events from every
  group (counted in :attr:`Router.withheld`), ``dedupe`` marks them for the client's check across
  connection sets. Lifecycle events (``shardrunner.*``) are delivered whatever the mode.
- Lifecycle events are opt-in: a group with ``events=None`` (or ``"*"`` among them) gets every
  platform event but only the lifecycle events its members name (``Group.subscribes``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from shardrunner.bus import checks
from shardrunner.bus import groups as tables
from shardrunner.bus import protocol as p
from shardrunner.bus.groups import DEDUPE, REDELIVERED, STAMP_SHIFT, Group, Item, Limits, Member, key_of
from shardrunner.bus.holds import Holds
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import PREFIX as _LIFECYCLE

__all__ = ["Group", "Item", "Limits", "Member", "Router"]
log = logging.getLogger("shardrunner.bus")

_LIVE = p.Delivery.LIVE
_DEDUPE_MODE = p.Delivery.DEDUPE


class Router:
    """All consumer groups of one worker."""

    #: Events a controller's filter dropped: none here (see :mod:`.hooked`).
    filtered = 0

    def __init__(self, limits: Limits | None = None, member_timeout: float = 5.0) -> None:
        self.limits = limits or Limits()
        self.member_timeout = member_timeout
        self.groups: dict[str, Group] = {}
        self._by_name: dict[str, list[Group]] = {}
        self.dropped_unsubscribed = 0
        #: Members' messages refused (:mod:`.checks`), counted by the server: ``bus_rejected``.
        self.rejected = 0
        self._outbox: list[tuple[bytes, bytes]] = []
        self._holds: dict[tuple[ConnKey, str], Holds] = {}
        # The holds of the last event published: consecutive events mostly come from one
        # connection, whose events all carry its one ConnKey object, so an identity check finds the
        # run without hashing the key (a different but equal key costs the dict lookup).
        self._last_conn: ConnKey | None = None
        self._last_session = ""
        self._last_holds: Holds | None = None
        #: Connections not delivered normally (see :meth:`set_delivery`); empty in the usual case.
        self._modes: dict[ConnKey, p.Delivery] = {}
        #: Milliseconds of wall clock now: the stamp of a marked event (a seam for the tests).
        self.stamp: Callable[[], int] = _now_ms
        #: Seconds of a monotonic clock: when batches are sent, for the acknowledgement lag (a seam).
        self.now: Callable[[], float] = time.monotonic
        #: The window marked batches carry (set with the modes).
        self.dedupe_window_ms = 0
        self.withheld: dict[ConnKey, int] = {}  # per connection, what hold or mute kept from all
        self._batch_no = 0  # the last batch number given (to any member)

    # -- membership -------------------------------------------------------------------------
    def declare(self, name: str, events: Iterable[str] | None) -> Group:
        """Make sure a group exists (known from before a restart, or joining now)."""
        group = self.groups.get(name)
        if group is None:
            platform, lifecycle = tables.split_events(events)
            group = self.groups[name] = Group(name, self.limits, platform, lifecycle=lifecycle)
            self._by_name.clear()
        return group

    def join(self, identity: bytes, join: p.Join, now: float) -> None:
        group = self.declare(join.group, join.events)
        group.durable = join.durable
        if join.max_events is not None or join.max_bytes is not None:
            # The group's own bounds, as its latest member gives them.
            group.limits = dataclasses.replace(
                self.limits,
                max_events=max(1, join.max_events or self.limits.max_events),
                max_bytes=max(1024, join.max_bytes or self.limits.max_bytes),
            )
        if join.member in group.members:
            # A re-join: what it had not acknowledged comes again (the group stays, even ephemeral).
            self._remove(group, join.member, keep_group=True)
        events, lifecycle = tables.split_events(join.events)
        group.members[join.member] = Member(join.member, identity, events, now, lifecycle=lifecycle)
        self._refresh_events(group)
        group.owners.clear()
        # What waited while the group had no member goes to the members now.
        held = list(group.backlog)
        group.backlog.clear()
        for event, _ in held:
            group.held_events -= 1
            group.held_bytes -= len(event.data)
        self._reroute(group, held, front=False)

    def leave(self, group_name: str, member: str, identity: bytes | None = None) -> str | None:
        """Remove a member; else why not (see :mod:`.checks`; ``identity`` None: not checked)."""
        group = self.groups.get(group_name)
        refused = checks.leave(group, group_name, member, identity)
        if refused is None and group is not None:
            self._remove(group, member)
        return refused

    def alive(self, identity: bytes, alive: p.Alive, now: float) -> str | None:
        """Refresh a member, admitting again the joins it repeats; else why not (:mod:`.checks`)."""
        refused = None
        for join in alive.joins:
            if join.member != alive.member:
                refused = checks.other_join(alive, join)
                continue
            group = self.groups.get(join.group)
            m = group.members.get(alive.member) if group is not None else None
            if m is None:
                self.join(identity, join, now)  # removed while silent, or this worker is new
            else:
                m.last_seen = now
        return refused

    def expire(self, now: float) -> list[str]:
        """Remove members silent for longer than the timeout; return their ids. A member alive but
        with a batch unacknowledged past ``ack_timeout`` (stuck) has what it has in flight given up:
        dropped, counted, told as a gap; its window is free again."""
        gone = []
        sent_before = self.now()
        for group in self.groups.values():
            for m in list(group.members.values()):
                if now - m.last_seen > self.member_timeout:
                    self._remove(group, m.id)
                    gone.append(m.id)
                elif m.sent_at and sent_before - m.sent_at[0] > group.limits.ack_timeout:
                    items = tables.give_up(group, m)
                    self._release(items)
                    log.warning("member %s of group %s acknowledged nothing for %g s: its %d events in"
                                " flight are given up (told as a gap)", m.id, group.name,
                                group.limits.ack_timeout, len(items))  # fmt: skip
        return gone

    def _remove(self, group: Group, member_id: str, *, keep_group: bool = False) -> None:
        member = group.members.pop(member_id)
        if not group.members and not group.durable and not keep_group:
            del self.groups[group.name]  # an ephemeral group ends with its last member
            self._by_name.clear()
            for _, items in member.inflight:
                self._release(items)
            self._release(member.waiting)
            self._release(group.backlog)
            return
        group.owners.clear()
        self._refresh_events(group)
        unacked = [(event, flags | REDELIVERED) for _, items in member.inflight for event, flags in items]
        group.redelivered += len(unacked)
        waiting = list(member.waiting)
        for event, _ in waiting:
            group.held_events -= 1
            group.held_bytes -= len(event.data)
        self._reroute(group, unacked + waiting, front=True)

    def _refresh_events(self, group: Group) -> None:
        if group.members:
            subs = [m.events for m in group.members.values()]
            group.events = None if any(s is None for s in subs) else frozenset().union(*subs)  # type: ignore[arg-type]
            group.lifecycle = frozenset().union(*(m.lifecycle for m in group.members.values()))
            self._by_name.clear()

    def _reroute(self, group: Group, items: list[Item], *, front: bool) -> None:
        if not group.members:
            # In front of newer events, still in their own order.
            for item in reversed(items) if front else items:
                self._hold(group, group.backlog, item, front=front)
            return
        if front:
            # Older than what the new owners already wait for: put them first, in order.
            per_member: dict[str, list[Item]] = {}
            for item in items:
                per_member.setdefault(group.owner(key_of(item[0])).id, []).append(item)
            for member_id, mine in per_member.items():
                member = group.members[member_id]
                for item in reversed(mine):
                    self._hold(group, member.waiting, item, front=True)
        else:
            for item in items:
                self._hold(group, group.owner(key_of(item[0])).waiting, item, front=False)

    # -- events -------------------------------------------------------------------------------
    def groups_for(self, name: str) -> list[Group]:
        groups = self._by_name.get(name)
        if groups is None:
            groups = self._by_name[name] = [g for g in self.groups.values() if g.subscribes(name)]
        return groups

    def publish(self, event: Event) -> None:
        """Route one event to every group that wants it (the hot path: a lookup and an append)."""
        groups = self.groups_for(event.name)
        if not groups:
            self.dropped_unsubscribed += 1
            return
        item = (event, 0)
        if self._modes:  # a reshard is under way: some connections are not live
            mode = self._modes.get(event.conn)
            # A lifecycle event is about the connection (no copy on the other set): never held back.
            if mode is not None and not event.name.startswith(_LIFECYCLE):
                if mode is not _DEDUPE_MODE:  # hold, mute: no group gets it, nothing is held
                    self.withheld[event.conn] = self.withheld.get(event.conn, 0) + 1
                    return
                item = (event, DEDUPE | (self.stamp() << STAMP_SHIFT))
        holds = self._last_holds
        if event.conn is not self._last_conn or event.session != self._last_session or holds is None:
            self._last_conn, self._last_session = event.conn, event.session
            key = (event.conn, event.session)
            holds = self._holds.get(key)
            if holds is None:
                holds = self._holds[key] = Holds(event.seq)
            self._last_holds = holds
        counts = holds.counts
        if event.seq - holds.base == len(counts):  # the usual case, inline
            counts.append(len(groups))
        else:
            holds.add(event.seq, len(groups))
        for group in groups:
            if group.members:
                self._hold(group, group.owner(key_of(event)).waiting, item, front=False)
            else:
                self._hold(group, group.backlog, item, front=False)

    # -- delivery modes (a reshard) ---------------------------------------------------------------
    def set_delivery(self, modes: Mapping[ConnKey, p.Delivery], window: float | None = None) -> None:
        """Change the delivery mode of these connections (others keep theirs; ``live`` is the
        default and removes the entry). Events already held are not affected. ``window``: the
        seconds within which two marked copies of one event were received by their workers (the
        client matches only those; see docs/resharding.md)."""
        if window is not None:
            self.dedupe_window_ms = max(0, round(window * 1000))
        for conn, mode in modes.items():
            if mode is _LIVE:
                self._modes.pop(conn, None)
            else:
                self._modes[conn] = p.Delivery(mode)

    def delivery(self, conn: ConnKey) -> p.Delivery:
        return self._modes.get(conn, _LIVE)

    def _hold(self, group: Group, queue: deque[Item], item: Item, *, front: bool) -> None:
        if front:
            queue.appendleft(item)
        else:
            queue.append(item)
        group.held_events += 1
        group.held_bytes += len(item[0].data)
        limits = group.limits
        while group.held_events > limits.max_events or group.held_bytes > limits.max_bytes:
            self._drop_oldest(group)

    def _drop_oldest(self, group: Group) -> None:
        # The backlog (no member at all) goes first; otherwise the longest waiting queue, which is
        # where a slow consumer piles up. Each queue is in arrival order: its head is its oldest.
        if group.backlog:
            queue = group.backlog
        else:
            waiting = [m.waiting for m in group.members.values() if m.waiting]
            if not waiting:
                return
            queue = max(waiting, key=len)
        event, _ = queue.popleft()
        self._release(((event, 0),))
        group.held_events -= 1
        group.held_bytes -= len(event.data)
        tables.lost(group, event)

    # -- acknowledgements ---------------------------------------------------------------------
    def ack(self, ack: p.Ack, now: float, identity: bytes | None = None) -> str | None:
        """Release what a member acknowledged; else why not (:mod:`.checks`)."""
        group = self.groups.get(ack.group)
        member = group.members.get(ack.member) if group else None
        refused = checks.ack(member, ack, identity)
        if refused is not None or member is None or group is None:
            return refused
        member.acked = ack.batch
        member.last_seen = now
        member.stalled = False  # it acknowledges again: its window opens
        while member.inflight and member.inflight[0][0] <= ack.batch:
            _, items = member.inflight.popleft()
            member.sent_at.popleft()
            member.inflight_events -= len(items)
            member.inflight_bytes -= sum(len(e.data) for e, _ in items)
            group.delivered += len(items)
            self._release(items)
        return None

    def _release(self, items: Iterable[Item]) -> None:
        """Items no longer held by one group (acknowledged or dropped)."""
        holds = self._holds
        conn: ConnKey | None = None
        session, h = "", None
        for event, _ in items:
            if event.conn is not conn or event.session != session:  # runs of one connection are common
                conn, session = event.conn, event.session
                h = holds.get((conn, session))
            if h is None:
                continue
            i = event.seq - h.base
            counts = h.counts
            if 0 <= i < len(counts) and counts[i]:
                counts[i] -= 1

    # -- output -------------------------------------------------------------------------------
    def flush(self, *, batches: bool = True) -> list[tuple[bytes, bytes]]:
        """Frames to send now: gap reports, then batches within each member's in-flight window.

        Without ``batches`` (past the worker's lease fence), only the answers to commands: every
        event stays where it is, held."""
        out = self._outbox
        self._outbox = []
        if not batches:
            return out
        now = self.now()
        for group in self.groups.values():
            if not group.members:
                continue
            if group.dropped and now - group.gaps_at >= tables.GAP_EVERY_S:
                for data in tables.gaps(group, now):
                    out.extend((m.identity, data) for m in group.members.values())
            limits = group.limits
            for member in group.members.values():
                while items := tables.take(member, limits):
                    n = len(items)
                    group.held_events -= n
                    group.held_bytes -= (size := sum(len(e.data) for e, _ in items))
                    member.inflight_bytes += size
                    # Numbered across the router, not per member: a member removed while silent and
                    # admitted again never sees a number it has already processed (its client acks
                    # only numbers above the highest it processed on this link).
                    self._batch_no = batch_no = self._batch_no + 1
                    member.next_batch = batch_no + 1
                    member.inflight.append((batch_no, items))
                    member.sent_at.append(now)
                    member.inflight_events += n
                    data = tables.batch(group.name, batch_no, items, self.dedupe_window_ms)
                    out.append((member.identity, data))
        return out

    def send_to(self, identity: bytes, message: p.BusMessage) -> None:
        self._outbox.append((identity, p.encode(message)))

    # -- accounting ---------------------------------------------------------------------------
    def low_water(self) -> dict[tuple[ConnKey, str], int]:
        """Per connection session, the oldest seq some group still holds (unsent or unacknowledged).

        A worker that dies loses what it held; its replacement resumes each connection just before
        this seq, so the gateway replays it (consumers drop what they had already).
        """
        low: dict[tuple[ConnKey, str], int] = {}
        for key, holds in list(self._holds.items()):
            seq = holds.oldest()
            if seq is None:
                del self._holds[key]  # nothing held: a later event starts it afresh
                self._last_holds = None
            else:
                low[key] = seq
        return low

    def undelivered(self) -> int:
        """Events the durable groups are still owed (waiting, in a backlog, or unacknowledged),
        summed over the groups: an event owed to two groups counts twice."""
        return sum(g.owes() for g in self.groups.values() if g.durable)

    def group_stats(self) -> list[p.GroupStats]:
        """The durable groups as ``status`` and the metrics show them (ephemeral ones, ``tail``, are
        not the cluster's to remember)."""
        now = self.now()
        return [tables.stats(g, now) for g in self.groups.values() if g.durable]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
