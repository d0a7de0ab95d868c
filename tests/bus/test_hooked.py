"""The router with a controller's hooks: the filter drops before any group (counted, held by
nobody), the routing function picks members, and either can be taken away at any time."""

from __future__ import annotations

from collections.abc import Collection

from shardrunner.bus import protocol as p
from shardrunner.bus.hooked import HookedRouter
from shardrunner.bus.router import Router
from shardrunner.protocol.envelope import Event, RoutingKey
from shardrunner.protocol.keys import ConnKey

C0 = ConnKey("discord", 0, 0, 1)


def ev(seq: int, key: int | None = 1, name: str = "MESSAGE_CREATE") -> Event:
    return Event(C0, "s", seq, name, key, b"x" * 10)


def seqs(out: list[tuple[bytes, bytes]], identity: bytes) -> list[int]:
    return [
        e.seq for i, d in out if i == identity and isinstance(b := p.decode(d), p.Batch) for e in b.events
    ]


def drop_typing(platform: str, name: str, key: RoutingKey) -> bool:
    return name != "TYPING_START"


def test_hooked_router_when_the_filter_refuses_drops_counts_and_holds_nothing() -> None:
    r = HookedRouter(accept=drop_typing)
    r.join(b"a", p.Join("g", "a"), 0)
    for s in range(1, 11):
        r.publish(ev(s, name="TYPING_START" if s % 2 else "MESSAGE_CREATE"))
    assert r.filtered == 5
    assert r.dropped_unsubscribed == 0
    out = r.flush()
    assert seqs(out, b"a") == [2, 4, 6, 8, 10]
    assert r.low_water() == {(C0, "s"): 2}, "the dropped seqs are held by nobody"
    r.ack(p.Ack("g", "a", 1), 0)
    assert r.low_water() == {}


def test_hooked_router_when_the_filter_is_removed_delivers_everything_again() -> None:
    r = HookedRouter(accept=drop_typing)
    r.join(b"a", p.Join("g", "a"), 0)
    r.publish(ev(1, name="TYPING_START"))
    r.accept = None  # a stalled filter is uninstalled so
    r.publish(ev(2, name="TYPING_START"))
    assert seqs(r.flush(), b"a") == [2]
    assert r.filtered == 1


def test_hooked_router_when_route_names_a_member_sends_it_there_else_by_rendezvous() -> None:
    asked: list[tuple[str, str, RoutingKey, list[str]]] = []

    def route(group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
        asked.append((group, name, key, sorted(members)))
        return "b" if name == "INTERACTION_CREATE" else None

    r = HookedRouter(route=route)
    plain = Router()
    for router in (r, plain):
        router.join(b"a", p.Join("g", "a"), 0)
        router.join(b"b", p.Join("g", "b"), 0)
    for s in range(1, 41):
        name = "INTERACTION_CREATE" if s % 4 == 0 else "MESSAGE_CREATE"
        r.publish(ev(s, key=s % 7, name=name))
        plain.publish(ev(s, key=s % 7, name=name))
    out, expected = r.flush(), plain.flush()
    interactions = [s for s in range(1, 41) if s % 4 == 0]
    assert set(interactions) <= set(seqs(out, b"b"))
    others = [s for s in range(1, 41) if s % 4]
    assert [s for s in seqs(out, b"a") if s in others] == [s for s in seqs(expected, b"a") if s in others]
    assert asked[0] == ("g", "MESSAGE_CREATE", 1, ["a", "b"])
    assert len(asked) == 40


def test_hooked_router_when_a_member_leaves_its_events_go_by_rendezvous_without_asking() -> None:
    asked: list[int] = []

    def route(group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
        asked.append(1)
        return "a" if "a" in members else None

    r = HookedRouter(route=route)
    r.join(b"a", p.Join("g", "a"), 0)
    r.join(b"b", p.Join("g", "b"), 0)
    for s in range(1, 6):
        r.publish(ev(s, key=s))
    assert seqs(r.flush(), b"a") == [1, 2, 3, 4, 5]
    r.leave("g", "a")
    assert len(asked) == 5
    assert seqs(r.flush(), b"b") == [1, 2, 3, 4, 5], "redelivered to the one left"
    r.route = None
    r.publish(ev(6, key=6))
    assert seqs(r.flush(), b"b") == [6]
    assert len(asked) == 5
