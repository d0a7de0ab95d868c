"""The worker's Discord state cache: what it keeps of a session, in what order it answers, and
the fold that bounds a guild's log."""

from __future__ import annotations

from typing import Any

import msgspec

from shardrunner.gateway.discord.state import StateCache, apply, fold
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

CONN = ConnKey("discord", 0, 1, 4)
G1, G2, G3 = 101 << 22, 102 << 22, 103 << 22


def ev(seq: int, name: str, key: int | None, d: Any, session: str = "s1") -> Event:
    return Event(CONN, session, seq, name, key, msgspec.json.encode(d))


def ready(seq: int = 1, guilds: tuple[int, ...] = (G1, G2), session: str = "s1") -> Event:
    stubs = [{"id": str(g), "unavailable": True} for g in guilds]
    return ev(seq, "READY", None, {"session_id": session, "guilds": stubs}, session)


def guild(gid: int, **extra: Any) -> dict[str, Any]:
    return {"id": str(gid), "name": f"g{gid}", "channels": [], "roles": [], "members": [], **extra}


def shape(events: list[Event]) -> list[tuple[int, str, int | None]]:
    return [(e.seq, e.name, e.key) for e in events]


def test_state_cache_when_a_session_runs_answers_ready_then_each_guild_then_its_log_in_seq_order() -> None:
    cache = StateCache(CONN)
    for event in [
        ready(),
        ev(2, "GUILD_CREATE", G1, guild(G1)),
        ev(3, "MESSAGE_CREATE", G1, {"id": "9"}),
        ev(4, "GUILD_CREATE", G2, guild(G2)),
        ev(5, "CHANNEL_CREATE", G2, {"id": "7", "guild_id": str(G2)}),
        ev(6, "GUILD_ROLE_CREATE", G1, {"guild_id": str(G1), "role": {"id": "5"}}),
        ev(7, "TYPING_START", G2, {}),
    ]:
        cache.observe(event)
    assert shape(cache.events()) == [
        (1, "READY", None),
        (2, "GUILD_CREATE", G1),
        (4, "GUILD_CREATE", G2),
        (5, "CHANNEL_CREATE", G2),
        (6, "GUILD_ROLE_CREATE", G1),
    ]
    assert cache.mark() == ("s1", 7), "the mark moves with every event, kept or not"
    assert cache.size() == sum(len(e.data) for e in cache.events())


def test_state_cache_when_a_guild_comes_again_keeps_only_its_new_create_and_drops_its_old_log() -> None:
    cache = StateCache(CONN)
    cache.observe(ready())
    cache.observe(ev(2, "GUILD_CREATE", G1, guild(G1)))
    cache.observe(ev(3, "GUILD_UPDATE", G1, {"id": str(G1), "name": "renamed"}))
    cache.observe(ev(4, "GUILD_CREATE", G1, guild(G1, name="renamed")))
    assert shape(cache.events()) == [(1, "READY", None), (4, "GUILD_CREATE", G1)]


def test_state_cache_when_a_guild_leaves_keeps_a_tombstone_only_for_a_guild_ready_listed() -> None:
    cache = StateCache(CONN)
    cache.observe(ready(guilds=(G1,)))
    cache.observe(ev(2, "GUILD_CREATE", G1, guild(G1)))
    cache.observe(ev(3, "GUILD_CREATE", G3, guild(G3)))  # joined after READY
    cache.observe(ev(4, "GUILD_DELETE", G1, {"id": str(G1)}))
    cache.observe(ev(5, "GUILD_DELETE", G3, {"id": str(G3)}))
    assert shape(cache.events()) == [(1, "READY", None), (4, "GUILD_DELETE", G1)], (
        "READY's stub of G1 must be removed again; G3 left no trace to undo"
    )


def test_state_cache_when_a_guild_has_an_outage_logs_its_delete_and_keeps_its_create() -> None:
    cache = StateCache(CONN)
    cache.observe(ready())
    cache.observe(ev(2, "GUILD_CREATE", G1, guild(G1)))
    cache.observe(ev(3, "GUILD_DELETE", G1, {"id": str(G1), "unavailable": True}))
    cache.observe(ev(4, "GUILD_CREATE", G2, {"id": str(G2), "unavailable": True}))
    assert shape(cache.events()) == [(1, "READY", None), (2, "GUILD_CREATE", G1), (3, "GUILD_DELETE", G1)]


def test_state_cache_when_a_new_session_starts_forgets_the_old_one() -> None:
    cache = StateCache(CONN)
    cache.observe(ready())
    cache.observe(ev(2, "GUILD_CREATE", G1, guild(G1)))
    cache.observe(ready(1, guilds=(G2,), session="s2"))
    assert shape(cache.events()) == [(1, "READY", None)]
    assert cache.mark() == ("s2", 1)
    assert cache.ready_guilds == {G2}


def test_state_cache_when_no_ready_was_seen_gives_nothing_and_no_mark() -> None:
    cache = StateCache(CONN)
    cache.observe(ev(40, "GUILD_CREATE", G1, guild(G1)))  # a resumed session: READY came elsewhere
    assert cache.events() == []
    assert cache.mark() == ("", 0)


def test_state_cache_when_a_log_reaches_its_bound_folds_it_into_the_guild_create() -> None:
    cache = StateCache(CONN, max_log=3)
    cache.observe(ready())
    cache.observe(ev(2, "GUILD_CREATE", G1, guild(G1, member_count=1)))
    cache.observe(ev(3, "CHANNEL_CREATE", G1, {"id": "7", "guild_id": str(G1), "name": "a"}))
    cache.observe(ev(4, "CHANNEL_UPDATE", G1, {"id": "7", "guild_id": str(G1), "name": "b"}))
    assert cache.folds == 0
    cache.observe(ev(5, "GUILD_MEMBER_ADD", G1, {"guild_id": str(G1), "user": {"id": "3"}}))
    assert cache.folds == 1
    events = cache.events()
    assert shape(events) == [(1, "READY", None), (5, "GUILD_CREATE", G1)]
    body = msgspec.json.decode(events[1].data)
    assert body["channels"] == [{"id": "7", "name": "b"}]
    assert body["members"] == [{"user": {"id": "3"}}]
    assert body["member_count"] == 2
    cache.observe(ev(6, "GUILD_ROLE_CREATE", G1, {"guild_id": str(G1), "role": {"id": "5"}}))
    assert shape(cache.events())[-1] == (6, "GUILD_ROLE_CREATE", G1), "the log starts again after a fold"


def test_fold_when_given_every_structural_kind_applies_each_as_discord_documents_it() -> None:
    g = guild(G1, member_count=2, emojis=[{"id": "1"}])
    g["channels"] = [{"id": "10", "name": "old"}, {"id": "11"}]
    g["roles"] = [{"id": "20", "name": "r"}, {"id": "21"}]
    g["members"] = [{"user": {"id": "30"}, "nick": None}, {"user": {"id": "31"}}]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("GUILD_UPDATE", {"id": str(G1), "name": "new name"}),
        ("CHANNEL_UPDATE", {"id": "10", "guild_id": str(G1), "name": "new"}),
        ("CHANNEL_DELETE", {"id": "11", "guild_id": str(G1)}),
        ("THREAD_CREATE", {"id": "12", "guild_id": str(G1)}),
        ("THREAD_DELETE", {"id": "12", "guild_id": str(G1)}),
        ("THREAD_CREATE", {"id": "13", "guild_id": str(G1)}),
        ("GUILD_ROLE_UPDATE", {"guild_id": str(G1), "role": {"id": "20", "name": "r2"}}),
        ("GUILD_ROLE_DELETE", {"guild_id": str(G1), "role_id": "21"}),
        ("GUILD_EMOJIS_UPDATE", {"guild_id": str(G1), "emojis": [{"id": "2"}]}),
        ("GUILD_STICKERS_UPDATE", {"guild_id": str(G1), "stickers": [{"id": "3"}]}),
        ("GUILD_MEMBER_UPDATE", {"guild_id": str(G1), "user": {"id": "30"}, "nick": "n"}),
        ("GUILD_MEMBER_UPDATE", {"guild_id": str(G1), "user": {"id": "99"}, "nick": "not held"}),
        ("GUILD_MEMBER_REMOVE", {"guild_id": str(G1), "user": {"id": "31"}}),
    ]
    create = ev(2, "GUILD_CREATE", G1, g)
    folded = fold(create, [ev(3 + i, name, G1, d) for i, (name, d) in enumerate(steps)])
    body = msgspec.json.decode(folded.data)
    assert (folded.seq, folded.name, folded.key) == (2 + len(steps), "GUILD_CREATE", G1)
    assert body["name"] == "new name"
    assert body["channels"] == [{"id": "10", "name": "new"}]
    assert body["threads"] == [{"id": "13"}]
    assert body["roles"] == [{"id": "20", "name": "r2"}]
    assert (body["emojis"], body["stickers"]) == ([{"id": "2"}], [{"id": "3"}])
    assert body["members"] == [{"user": {"id": "30"}, "nick": "n"}]
    assert body["member_count"] == 1


def test_apply_when_a_guild_has_an_outage_marks_it_unavailable() -> None:
    g = guild(G1)
    apply(g, "GUILD_DELETE", {"id": str(G1), "unavailable": True})
    apply(g, "MESSAGE_CREATE", {"id": "1"})  # not structural: nothing
    assert g == guild(G1, unavailable=True)


def test_state_cache_when_a_resume_replays_events_it_saw_keeps_each_once() -> None:
    cache = StateCache(CONN)
    first = [
        ready(),
        ev(2, "GUILD_CREATE", G1, guild(G1)),
        ev(3, "GUILD_MEMBER_ADD", G1, {"guild_id": str(G1), "user": {"id": "3"}}),
    ]
    for event in [*first, *first[1:]]:  # resumed from seq 1: 2 and 3 again
        cache.observe(event)
    assert shape(cache.events()) == [(1, "READY", None), (2, "GUILD_CREATE", G1), (3, "GUILD_MEMBER_ADD", G1)]
    assert cache.mark() == ("s1", 3)
