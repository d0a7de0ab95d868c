"""Which groups get lifecycle events: opt-in by name or ``shardrunner.*``, never by ``events=None``;
and delivered whatever a connection's delivery mode."""

from __future__ import annotations

from shardrunner.bus import protocol as p
from shardrunner.bus.groups import Group, Limits, split_events, subscription
from shardrunner.bus.router import Router
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

C0 = ConnKey("discord", 0, 0, 2)
READY, RESUMED = lifecycle.READY, lifecycle.RESUMED


def ev(seq: int, name: str = "MESSAGE_CREATE", session: str = "s") -> Event:
    return Event(C0, session, seq, name, 1 if not lifecycle.is_lifecycle(name) else None, b"{}")


def names(out: list[tuple[bytes, bytes]], identity: bytes) -> list[str]:
    batches = [m for i, d in out if i == identity and isinstance(m := p.decode(d), p.Batch)]
    return [e.name for b in batches for e in b.events]


def test_group_subscribes_when_lifecycle_names_are_asked_for_gets_only_those() -> None:
    everything = Group("all", Limits())
    assert everything.subscribes("MESSAGE_CREATE")
    assert not everything.subscribes(READY)
    events, asked = split_events(["MESSAGE_CREATE", READY])
    named = Group("named", Limits(), events, lifecycle=asked)
    assert named.subscribes(READY)
    assert not named.subscribes(RESUMED)
    assert not named.subscribes("GUILD_CREATE")
    events, asked = split_events(["*", lifecycle.WILDCARD])
    assert events is None, '"*": every platform event'
    wildcard = Group("w", Limits(), events, lifecycle=asked)
    assert all(wildcard.subscribes(n) for n in lifecycle.NAMES)
    assert wildcard.subscribes("TYPING_START"), "events=None still means every platform event"


def test_router_when_a_group_takes_everything_it_gets_no_lifecycle_event() -> None:
    r = Router()
    r.join(b"a", p.Join("all", "a"), 0)
    r.join(b"b", p.Join("ready-only", "b", ["MESSAGE_CREATE", READY]), 0)
    r.join(b"c", p.Join("all-and-lifecycle", "c", ["*", lifecycle.WILDCARD]), 0)
    r.publish(ev(1))
    r.publish(ev(1, READY, "shardrunner:x"))
    r.publish(ev(2, RESUMED, "shardrunner:x"))
    out = r.flush()
    assert names(out, b"a") == ["MESSAGE_CREATE"]
    assert names(out, b"b") == ["MESSAGE_CREATE", READY]
    assert names(out, b"c") == ["MESSAGE_CREATE", READY, RESUMED]


def test_router_when_a_member_asks_for_lifecycle_later_the_cached_groups_are_recomputed() -> None:
    r = Router()
    r.join(b"a", p.Join("g", "a"), 0)
    r.publish(ev(1, READY, "shardrunner:x"))
    assert r.dropped_unsubscribed == 1
    r.join(b"b", p.Join("g", "b", ["*", READY]), 0)
    r.publish(ev(2, READY, "shardrunner:x"))
    assert r.dropped_unsubscribed == 1
    r.leave("g", "b")
    r.publish(ev(3, READY, "shardrunner:x"))
    assert r.dropped_unsubscribed == 2, "the member that asked left: the group no longer gets them"


def test_router_when_a_durable_group_has_no_member_keeps_its_lifecycle_events() -> None:
    r = Router()
    r.declare("known", ["MESSAGE_CREATE", lifecycle.WILDCARD])  # from before a restart
    r.publish(ev(1, lifecycle.DISCONNECTED, "shardrunner:x"))
    r.join(b"a", p.Join("known", "a", ["MESSAGE_CREATE", lifecycle.WILDCARD]), 0)
    r.leave("known", "a")
    r.publish(ev(2, READY, "shardrunner:x"))
    r.join(b"a", p.Join("known", "a", ["MESSAGE_CREATE", lifecycle.WILDCARD]), 0)
    assert names(r.flush(), b"a") == [lifecycle.DISCONNECTED, READY]


def test_router_when_a_connection_is_held_or_deduped_its_lifecycle_events_still_go_unmarked() -> None:
    r = Router()
    r.join(b"a", p.Join("g", "a", ["*", lifecycle.WILDCARD]), 0)
    r.set_delivery({C0: p.Delivery.HOLD})
    r.publish(ev(1))
    r.publish(ev(1, READY, "shardrunner:x"))
    assert r.withheld == {C0: 1}, "the platform's event only"
    r.set_delivery({C0: p.Delivery.DEDUPE}, 1.0)
    r.publish(ev(2))
    r.publish(ev(2, lifecycle.SWITCHED, "shardrunner:x"))
    out = r.flush()
    (batch,) = [m for _, d in out if isinstance(m := p.decode(d), p.Batch)]
    assert [e.name for e in batch.events] == [READY, "MESSAGE_CREATE", lifecycle.SWITCHED]
    assert batch.dedupe == [1], "only the platform's event is marked for the cross-set check"


def test_router_when_groups_are_reported_their_subscription_declares_them_again_alike() -> None:
    r = Router()
    r.join(b"a", p.Join("all", "a"), 0)
    r.join(b"b", p.Join("all-and-ready", "b", ["*", READY]), 0)
    r.join(b"c", p.Join("named", "c", ["MESSAGE_CREATE", lifecycle.WILDCARD]), 0)
    stats = {g.name: g.events for g in r.group_stats()}
    assert stats == {
        "all": None,
        "all-and-ready": ["*", READY],
        "named": ["MESSAGE_CREATE", lifecycle.WILDCARD],
    }
    # What a worker that replaces a crashed one declares from the supervisor's memory (Assign.groups):
    fresh = Router()
    for name, events in stats.items():
        fresh.declare(name, events)
    for name, group in fresh.groups.items():
        assert (group.events, group.lifecycle) == (r.groups[name].events, r.groups[name].lifecycle), name
        assert subscription(group.events, group.lifecycle) == stats[name]
    assert [g.name for g in fresh.groups_for(READY)] == ["all-and-ready", "named"]
    assert [g.name for g in fresh.groups_for("TYPING_START")] == ["all", "all-and-ready"]
