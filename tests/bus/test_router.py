"""The worker's delivery rules, without sockets."""

from __future__ import annotations

import msgspec
import pytest

from shardrunner.bus import protocol as p
from shardrunner.bus.router import Limits, Router
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

C0 = ConnKey("discord", 0, 0, 1)


def ev(
    seq: int, key: int | None = 1, name: str = "MESSAGE_CREATE", conn: ConnKey = C0, size: int = 10
) -> Event:
    return Event(conn, "s", seq, name, key, b"x" * size)


def batches(out: list[tuple[bytes, bytes]], identity: bytes) -> list[p.Batch]:
    return [m for i, d in out if i == identity and isinstance(m := p.decode(d), p.Batch)]


def seqs(out: list[tuple[bytes, bytes]], identity: bytes) -> list[int]:
    return [e.seq for b in batches(out, identity) for e in b.events]


def test_router_when_no_group_subscribes_drops_the_event_undecoded() -> None:
    r = Router()
    r.publish(ev(1))
    assert r.dropped_unsubscribed == 1
    r.join(b"a", p.Join("g", "a", ["TYPING_START"]), 0)
    r.publish(ev(2))
    assert r.dropped_unsubscribed == 2
    assert r.flush() == []


def test_router_when_groups_subscribe_every_group_gets_every_event() -> None:
    r = Router()
    r.join(b"a", p.Join("one", "a"), 0)
    r.join(b"b", p.Join("two", "b", ["MESSAGE_CREATE"]), 0)
    for s in range(1, 4):
        r.publish(ev(s))
    out = r.flush()
    assert seqs(out, b"a") == [1, 2, 3]
    assert seqs(out, b"b") == [1, 2, 3]


def test_router_when_two_members_share_a_group_each_guild_sticks_to_one_member() -> None:
    r = Router()
    r.join(b"a", p.Join("g", "a"), 0)
    r.join(b"b", p.Join("g", "b"), 0)
    for s in range(1, 201):
        r.publish(ev(s, key=s % 20))
    out = r.flush()
    a, b = batches(out, b"a"), batches(out, b"b")
    keys_a = {e.key for x in a for e in x.events}
    keys_b = {e.key for x in b for e in x.events}
    assert keys_a, "both members get a share"
    assert keys_b, "both members get a share"
    assert not keys_a & keys_b
    assert sorted(seqs(out, b"a") + seqs(out, b"b")) == list(range(1, 201))
    assert seqs(out, b"a") == sorted(seqs(out, b"a")), "in order per member"


def test_router_when_a_member_dies_the_other_takes_its_guilds_and_its_unacked_events() -> None:
    r = Router(member_timeout=5)
    r.join(b"a", p.Join("g", "a"), 0)
    r.join(b"b", p.Join("g", "b"), 0)
    for s in range(1, 101):
        r.publish(ev(s, key=s % 10))
    out = r.flush()
    got_a = seqs(out, b"a")
    r.alive(b"b", p.Alive("b", [p.Join("g", "b")]), 6)
    assert r.expire(6.1) == ["a"]
    out = r.flush()
    again = batches(out, b"b")
    assert sorted(e.seq for x in again for e in x.events) == got_a
    assert all(len(x.redelivered) == len(x.events) for x in again), "marked as redelivered"
    r.publish(ev(101, key=1))
    assert seqs(r.flush(), b"b") == [101]


def test_router_when_acked_forgets_and_when_window_full_holds_back() -> None:
    r = Router(Limits(max_inflight=10, batch_size=4))
    r.join(b"a", p.Join("g", "a"), 0)
    for s in range(1, 31):
        r.publish(ev(s))
    out = r.flush()
    assert seqs(out, b"a") == list(range(1, 11))
    assert r.low_water() == {(C0, "s"): 1}
    last = batches(out, b"a")[-1].batch
    r.ack(p.Ack("g", "a", last), 1)
    assert seqs(r.flush(), b"a") == list(range(11, 21))
    assert r.low_water() == {(C0, "s"): 11}


def test_router_when_nobody_consumes_keeps_a_bounded_backlog_and_reports_the_exact_gap() -> None:
    r = Router(Limits(max_events=5))
    r.join(b"a", p.Join("g", "a"), 0)
    r.leave("g", "a")
    for s in range(1, 13):
        r.publish(ev(s))
    assert r.groups["g"].held_events == 5
    r.join(b"c", p.Join("g", "c"), 1)
    out = r.flush()
    gaps = [m for _, d in out if isinstance(m := p.decode(d), p.Gap)]
    assert gaps == [p.Gap("g", C0, "s", 7, [(1, 7)])]
    assert seqs(out, b"c") == [8, 9, 10, 11, 12]


def test_router_when_bytes_exceed_the_limit_drops_oldest() -> None:
    r = Router(Limits(max_bytes=1000))
    r.declare("g", None)
    for s in range(1, 11):
        r.publish(ev(s, size=300))
    group = r.groups["g"]
    assert group.held_bytes <= 1000
    assert group.held_events == 3
    assert group.dropped_total == 7


def test_router_when_big_events_fill_the_bytes_window_holds_the_rest_back() -> None:
    r = Router(Limits(max_inflight_bytes=1000, batch_size=64))
    r.join(b"a", p.Join("g", "a"), 0)
    for s in range(1, 11):
        r.publish(ev(s, size=300))
    out = r.flush()
    assert seqs(out, b"a") == [1, 2, 3], "900 bytes in flight; a fourth would pass 1000"
    member = r.groups["g"].members["a"]
    assert (member.inflight_bytes, r.groups["g"].held_bytes) == (900, 2100)
    r.ack(p.Ack("g", "a", batches(out, b"a")[-1].batch), 1)
    assert member.inflight_bytes == 0
    assert seqs(r.flush(), b"a") == [4, 5, 6]
    r.publish(ev(11, size=5000))
    r.ack(p.Ack("g", "a", 2), 2)
    assert seqs(r.flush(), b"a") == [7, 8, 9]
    r.ack(p.Ack("g", "a", 3), 3)
    assert seqs(r.flush(), b"a") == [10], "the big one waits for an empty window"
    r.ack(p.Ack("g", "a", 4), 4)
    assert seqs(r.flush(), b"a") == [11], "bigger than the window: it goes alone"
    assert r.flush() == []


def test_router_when_a_live_member_acknowledges_nothing_past_the_ack_timeout_gives_its_window_up() -> None:
    r = Router(Limits(max_inflight=10, ack_timeout=30))
    clock = [100.0]
    r.now = lambda: clock[0]
    r.join(b"a", p.Join("g", "a"), 0)
    for s in range(1, 16):
        r.publish(ev(s))
    assert seqs(r.flush(), b"a") == list(range(1, 11))
    clock[0] += 29
    r.alive(b"a", p.Alive("a", [p.Join("g", "a")]), 29)
    assert r.expire(29) == []
    assert r.groups["g"].dropped_total == 0, "within the ack timeout nothing is given up"
    clock[0] += 2
    assert r.expire(31) == [], "alive: still a member"
    group = r.groups["g"]
    assert (group.dropped_total, group.members["a"].inflight_events) == (10, 0)
    out = r.flush()
    gaps = [m for _, d in out if isinstance(m := p.decode(d), p.Gap)]
    assert gaps == [p.Gap("g", C0, "s", 10, [(1, 10)])]
    assert seqs(out, b"a") == [], "stalled: nothing more until it acknowledges"
    assert r.low_water() == {(C0, "s"): 11}, "the given-up events hold the resume point no more"
    assert r.group_stats()[0].dropped == 10
    r.ack(p.Ack("g", "a", 1), 32)  # a late ack, of a given-up batch: it is working again
    assert seqs(r.flush(), b"a") == [11, 12, 13, 14, 15]
    assert group.members["a"].inflight_events == 5


def test_router_when_drops_go_on_tells_them_in_one_gap_a_second() -> None:
    r = Router(Limits(max_events=2))
    clock = [0.0]
    r.now = lambda: clock[0]
    r.join(b"a", p.Join("g", "a"), 0)
    r.groups["g"].members["a"].stalled = True  # holds everything back: its queue overflows

    def gaps() -> list[p.Gap]:
        return [m for _, d in r.flush() if isinstance(m := p.decode(d), p.Gap)]

    for s in range(1, 6):
        r.publish(ev(s))
    assert gaps() == [p.Gap("g", C0, "s", 3, [(1, 3)])], "the first at once"
    r.publish(ev(6))
    clock[0] += 0.5
    r.publish(ev(7))
    assert gaps() == [], "within the second: kept for the next"
    clock[0] += 0.5
    assert gaps() == [p.Gap("g", C0, "s", 2, [(4, 5)])]
    assert gaps() == []


def test_router_when_a_member_rejoins_gets_its_unacked_events_again() -> None:
    r = Router()
    r.join(b"a", p.Join("g", "a"), 0)
    r.publish(ev(1))
    r.flush()
    r.join(b"a2", p.Join("g", "a"), 1)  # reconnected with a new socket
    out = r.flush()
    [batch] = batches(out, b"a2")
    assert [e.seq for e in batch.events] == [1]
    assert batch.redelivered == [0]


@pytest.mark.parametrize("members", [["a", "b", "c"], ["a", "b", "c", "d"]])
def test_router_when_membership_changes_only_the_leavers_keys_move(members: list[str]) -> None:
    r = Router()
    for m in members:
        r.join(m.encode(), p.Join("g", m), 0)
    group = r.groups["g"]
    before = {k: group.owner(k).id for k in range(500)}
    r.leave("g", members[-1])
    after = {k: group.owner(k).id for k in range(500)}
    moved = {k for k in before if before[k] != after[k]}
    assert moved == {k for k, m in before.items() if m == members[-1]}


def test_router_when_an_ephemeral_group_loses_its_last_member_forgets_it() -> None:
    r = Router()
    r.join(b"t", p.Join("tail-1", "t", None, durable=False), 0)
    r.publish(ev(1))
    r.leave("tail-1", "t")
    assert "tail-1" not in r.groups
    r.publish(ev(2))
    assert r.dropped_unsubscribed == 1, "nobody queues for a tail that is gone"


def test_router_when_a_silent_member_speaks_again_it_is_admitted_again() -> None:
    r = Router(member_timeout=5)
    join = p.Join("g", "a")
    r.join(b"a", join, 0)
    assert r.expire(6) == ["a"]
    r.publish(ev(1))
    r.alive(b"a", p.Alive("a", [join]), 7)
    assert seqs(r.flush(), b"a") == [1], "its events waited for it"


def test_router_when_a_silent_member_is_admitted_again_its_batches_number_above_the_old_ones() -> None:
    # Its client acknowledges only batch numbers above the highest it processed on this link: if the
    # numbering started again at 1, it would never acknowledge, and its window would fill for good.
    r = Router(member_timeout=5)
    join = p.Join("g", "a")
    r.join(b"a", join, 0)
    before = []
    for s in range(1, 4):
        r.publish(ev(s))
        before += batches(r.flush(), b"a")
    assert [b.batch for b in before] == [1, 2, 3]
    assert r.expire(6) == ["a"], "silent: removed, its events in flight wait again"
    r.alive(b"a", p.Alive("a", [join]), 7)
    r.publish(ev(4))
    again = batches(r.flush(), b"a")
    assert [e.seq for b in again for e in b.events] == [1, 2, 3, 4]
    assert min(b.batch for b in again) > 3
    assert r.ack(p.Ack("g", "a", again[-1].batch), 8, b"a") is None
    assert r.low_water() == {}, "everything acknowledged"


def test_router_when_a_member_of_an_ephemeral_group_rejoins_the_group_stays() -> None:
    r = Router()
    join = p.Join("tail-1", "t", None, durable=False)
    r.join(b"t", join, 0)
    r.join(b"t2", join, 1)
    r.publish(ev(1))
    assert seqs(r.flush(), b"t2") == [1]


def test_router_low_water_when_a_connection_changed_session_keeps_them_apart() -> None:
    r = Router()
    r.declare("g", None)
    r.publish(Event(C0, "old", 500, "MESSAGE_CREATE", 1, b"x"))
    r.publish(Event(C0, "new", 3, "MESSAGE_CREATE", 1, b"x"))
    assert r.low_water() == {(C0, "old"): 500, (C0, "new"): 3}


def test_router_when_a_member_gives_its_group_bounds_the_group_uses_them() -> None:
    r = Router(Limits(max_events=1000))
    r.join(b"a", p.Join("small", "a", None, True, max_events=3), 0)
    r.join(b"b", p.Join("big", "b"), 0)
    r.leave("small", "a")
    r.leave("big", "b")
    for s in range(1, 11):
        r.publish(ev(s))
    assert r.groups["small"].held_events == 3
    assert r.groups["big"].held_events == 10


def _scanned_low_water(r: Router) -> dict[tuple[ConnKey, str], int]:
    """The low water by brute force: the oldest seq in everything any group holds."""
    low: dict[tuple[ConnKey, str], int] = {}
    for group in r.groups.values():
        items = [*group.backlog]
        for m in group.members.values():
            items += [*m.waiting, *(item for _, batch in m.inflight for item in batch)]
        for event, _ in items:
            key = (event.conn, event.session)
            low[key] = min(low.get(key, event.seq), event.seq)
    return low


@pytest.mark.parametrize("seed", range(20))
def test_router_low_water_matches_a_scan_of_everything_held_whatever_happens(seed: int) -> None:
    import random

    rng = random.Random(seed)
    r = Router(Limits(max_events=60, max_inflight=16, batch_size=4))
    r.declare("durable", None)
    r.declare("typing", ["TYPING_START"])
    conns = [ConnKey("discord", 0, 0, 2), ConnKey("discord", 0, 1, 2)]
    next_seq = {0: 1, 1: 1}
    sent: dict[bytes, list[p.Batch]] = {}
    for step in range(400):
        action = rng.random()
        if action < 0.5:
            shard = rng.randrange(2)
            name = rng.choice(["MESSAGE_CREATE", "TYPING_START", "PRESENCE_UPDATE"])
            # Mostly the connection's one key object, sometimes an equal copy (as after a decode).
            conn = conns[shard] if rng.random() < 0.8 else ConnKey(*msgspec.structs.astuple(conns[shard]))
            r.publish(Event(conn, f"s{shard}", next_seq[shard], name, rng.randrange(5), b"x"))
            next_seq[shard] += rng.choice([1, 1, 1, 3])  # sometimes seqs nobody got in between
        elif action < 0.6:
            member = rng.choice(["a", "b", "c"])
            group = rng.choice(["durable", "typing", "tail"])
            r.join(member.encode(), p.Join(group, member, None, group != "tail"), step)
        elif action < 0.62:
            r.set_delivery({conns[rng.randrange(2)]: rng.choice(list(p.Delivery))})
        elif action < 0.65:
            group = rng.choice(list(r.groups))
            if r.groups[group].members:
                r.leave(group, rng.choice(list(r.groups[group].members)))
        elif action < 0.9:
            for identity, data in r.flush():
                message = p.decode(data)
                if isinstance(message, p.Batch):
                    sent.setdefault(identity, []).append(message)
        else:
            for identity, batches_sent in sent.items():
                if batches_sent and rng.random() < 0.7:
                    upto = batches_sent[rng.randrange(len(batches_sent))]
                    r.ack(p.Ack(upto.group, identity.decode(), upto.batch), step)
        assert r.low_water() == _scanned_low_water(r), f"step {step}"


def test_router_low_water_when_everything_was_acked_starts_at_the_next_held_seq() -> None:
    r = Router(Limits(batch_size=4))
    r.join(b"a", p.Join("g", "a", ["MESSAGE_CREATE"]), 0)
    r.publish(ev(1))
    r.ack(p.Ack("g", "a", batches(r.flush(), b"a")[-1].batch), 1)
    assert r.low_water() == {}
    r.publish(ev(2, name="TYPING_START"))  # nobody holds it
    r.publish(ev(3))
    assert r.low_water() == {(C0, "s"): 3}
    r.publish(ev(4))
    r.ack(p.Ack("g", "a", batches(r.flush(), b"a")[-1].batch), 2)
    r.publish(ev(9))
    assert r.low_water() == {(C0, "s"): 9}


def test_router_when_the_last_member_leaves_its_unacked_events_come_back_in_order() -> None:
    r = Router(Limits(batch_size=4))
    r.join(b"a", p.Join("g", "a"), 0)
    for s in range(1, 9):
        r.publish(ev(s))
    assert seqs(r.flush(), b"a") == list(range(1, 9))
    r.leave("g", "a")
    r.publish(ev(9))
    r.join(b"b", p.Join("g", "b"), 1)
    assert seqs(r.flush(), b"b") == list(range(1, 10))


def test_router_when_two_discord_sets_run_side_by_side_keeps_their_holds_low_water_and_gaps_apart() -> None:
    """A reshard runs the set of 4 and the set of 8 at once: shard 1 of each is another connection,
    even with the same session id and seqs."""
    old = [ConnKey("discord", 0, i, 4) for i in range(4)]
    new = [ConnKey("discord", 1, i, 8) for i in range(8)]
    r = Router(Limits(max_events=4))
    r.join(b"a", p.Join("g", "a"), 0)
    r.leave("g", "a")
    for seq in range(1, 4):
        r.publish(ev(seq, conn=old[1]))
        r.publish(ev(seq + 10, conn=new[1]))
    assert r.low_water() == {(old[1], "s"): 2, (new[1], "s"): 12}
    r.join(b"b", p.Join("g", "b"), 1)
    out = r.flush()
    gaps = sorted((m for _, d in out if isinstance(m := p.decode(d), p.Gap)), key=lambda g: g.conn)
    assert gaps == [p.Gap("g", old[1], "s", 1, [(1, 1)]), p.Gap("g", new[1], "s", 1, [(11, 11)])]
    assert sorted((e.conn, e.seq) for b in batches(out, b"b") for e in b.events) == [
        (old[1], 2),
        (old[1], 3),
        (new[1], 12),
        (new[1], 13),
    ]


def test_router_when_events_have_no_routing_key_keeps_each_shard_numbers_events_on_one_member() -> None:
    """DMs come to shard 0 of each set during a reshard: both copies must reach the one member
    (one process) whose client drops the second, so key-less events go by (platform, shard)."""
    sets = [ConnKey("discord", 0, i, 4) for i in range(4)] + [ConnKey("discord", 1, i, 8) for i in range(8)]
    r = Router()
    for m in "abcd":
        r.join(m.encode(), p.Join("g", m), 0)
    for seq in range(1, 25):
        for conn in sets:
            r.publish(ev(seq, key=None, conn=conn))
    out = r.flush()
    members_of: dict[int, set[bytes]] = {}
    for identity in (b"a", b"b", b"c", b"d"):
        for b in batches(out, identity):
            for e in b.events:
                members_of.setdefault(e.conn.shard, set()).add(identity)
    assert set(members_of) == set(range(8))
    assert all(len(m) == 1 for m in members_of.values()), "one member per shard number, both sets"
    assert len(set().union(*members_of.values())) > 1, "the shards are spread over members"


def test_router_when_a_connection_is_held_or_muted_withholds_its_events_and_holds_nothing() -> None:
    old, new = ConnKey("discord", 0, 1, 4), ConnKey("discord", 1, 1, 8)
    r = Router()
    r.join(b"a", p.Join("g", "a", ["MESSAGE_CREATE"]), 0)
    r.declare("absent", None)
    r.set_delivery({new: p.Delivery.HOLD})
    for seq in range(1, 4):
        r.publish(ev(seq, conn=old))
        r.publish(ev(seq, conn=new))
    r.publish(ev(4, conn=new, name="TYPING_START"))  # the absent group takes it: withheld too
    assert (r.delivery(new), r.delivery(old)) == (p.Delivery.HOLD, p.Delivery.LIVE)
    assert r.withheld == {new: 4}
    assert r.low_water() == {(old, "s"): 1}, "nothing of the held connection is held for a resume"
    assert [(e.conn, e.seq) for b in batches(r.flush(), b"a") for e in b.events] == [
        (old, 1),
        (old, 2),
        (old, 3),
    ]
    assert r.groups["absent"].held_events == 3, "the backlog has none of it either"
    r.set_delivery({old: p.Delivery.MUTE, new: p.Delivery.LIVE})
    r.publish(ev(4, conn=old))
    r.publish(ev(5, conn=new))
    assert r.withheld == {new: 4, old: 1}
    assert (r.delivery(new), r.delivery(old)) == (p.Delivery.LIVE, p.Delivery.MUTE)
    assert [(e.conn, e.seq) for b in batches(r.flush(), b"a") for e in b.events] == [(new, 5)]
    assert r.low_water() == {(old, "s"): 1, (new, "s"): 5}


def test_router_when_a_connection_is_in_dedupe_marks_its_events_and_a_redelivery_keeps_both_marks() -> None:
    old, new = ConnKey("discord", 0, 0, 4), ConnKey("discord", 1, 0, 8)
    r = Router()
    clock = iter(range(1_000, 2_000, 10))
    r.stamp = lambda: next(clock)
    r.join(b"a", p.Join("g", "a"), 0)
    r.set_delivery({old: p.Delivery.DEDUPE}, window=0.25)
    for seq in range(1, 4):
        r.publish(ev(seq, conn=old))
        r.publish(ev(seq, conn=new))
    r.set_delivery({old: p.Delivery.LIVE})  # what was published marked stays marked
    r.publish(ev(4, conn=old))
    (first,) = batches(r.flush(), b"a")
    assert [(e.conn, e.seq) for e in first.events] == [
        (old, 1), (new, 1), (old, 2), (new, 2), (old, 3), (new, 3), (old, 4)
    ]  # fmt: skip
    assert (first.dedupe, first.redelivered) == ([0, 2, 4], [])
    assert (first.stamps, first.window) == ([1_000, 1_010, 1_020], 250), "when each was received"
    assert r.withheld == {}
    r.leave("g", "a")  # unacknowledged: to the backlog, then to the next member, marked again
    r.join(b"b", p.Join("g", "b"), 1)
    (again,) = batches(r.flush(), b"b")
    assert [(e.conn, e.seq) for e in again.events] == [(e.conn, e.seq) for e in first.events]
    assert (again.dedupe, again.redelivered) == ([0, 2, 4], list(range(7)))
    assert again.stamps == first.stamps
    assert p.decode(p.encode(again)) == again


def test_router_undelivered_when_asked_sums_what_the_durable_groups_are_owed() -> None:
    r = Router(Limits(max_inflight=2, batch_size=1))
    r.join(b"a", p.Join("bot", "a"), 0)  # 2 in flight, 1 waiting
    r.declare("away", None)  # 3 in its backlog
    r.join(b"t", p.Join("tail-1", "t", None, durable=False), 0)  # not the cluster's to count
    for seq in range(1, 4):
        r.publish(ev(seq))
    sent = [b.batch for b in batches(r.flush(), b"a")]
    assert r.undelivered() == 6
    r.ack(p.Ack("bot", "a", sent[-1]), 1)
    assert r.undelivered() == 4
    (last,) = batches(r.flush(), b"a")
    r.ack(p.Ack("bot", "a", last.batch), 1)
    assert r.undelivered() == 3


def test_router_group_stats_when_asked_lists_the_durable_groups_only() -> None:
    r = Router(Limits(max_inflight=2, batch_size=1))
    now = [100.0]
    r.now = lambda: now[0]
    r.join(b"a", p.Join("bot", "a", ["MESSAGE_CREATE", "GUILD_CREATE"]), 0)
    r.join(b"t", p.Join("tail-1", "t", None, durable=False), 0)
    r.declare("idle", None)
    for seq in range(1, 5):
        r.publish(ev(seq, size=10))
    r.flush()
    now[0] = 101.5
    assert r.group_stats() == [
        p.GroupStats("bot", ["GUILD_CREATE", "MESSAGE_CREATE"], 1, 2, 20, 2, 0, ack_lag=1.5),
        p.GroupStats("idle", None, 0, 4, 40, 0, 0),
    ]


def test_router_group_stats_count_delivered_redelivered_and_the_oldest_unacked_batchs_age() -> None:
    r = Router(Limits(max_inflight=4, batch_size=2))
    now = [10.0]
    r.now = lambda: now[0]
    r.join(b"a", p.Join("bot", "a"), 0)
    for seq in range(1, 5):
        r.publish(ev(seq))
    r.flush()  # batches 1 and 2 sent at 10.0
    now[0] = 12.0
    r.ack(p.Ack("bot", "a", 1), 12.0)  # 2 delivered
    r.publish(ev(5))
    r.publish(ev(6))
    r.flush()  # batch 3 sent at 12.0
    now[0] = 13.0
    (bot,) = r.group_stats()
    assert (bot.delivered, bot.redelivered, bot.ack_lag) == (2, 0, 3.0)  # batch 2, sent at 10.0
    r.ack(p.Ack("bot", "a", 2), 13.0)
    (bot,) = r.group_stats()
    assert (bot.delivered, bot.ack_lag) == (4, 1.0)  # batch 3 is the oldest now
    r.join(b"b", p.Join("bot", "b"), 13.0)
    r.leave("bot", "a")  # batch 3 (2 events) goes to b, marked redelivered
    r.flush()
    (bot,) = r.group_stats()
    assert (bot.delivered, bot.redelivered, bot.ack_lag) == (4, 2, 0.0)
