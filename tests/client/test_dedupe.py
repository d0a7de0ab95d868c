"""Dropping duplicates by (conn, session, seq)."""

from __future__ import annotations

from shardrunner.client.dedupe import Dedupe
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

C0 = ConnKey("discord", 0, 0, 1)


def test_dedupe_when_the_same_event_comes_twice_drops_the_second() -> None:
    dedupe = Dedupe()
    e = Event(C0, "s", 5, "TYPING_START", None, b"{}")
    assert not dedupe.duplicate(e)
    assert dedupe.duplicate(e)
    assert not dedupe.duplicate(Event(C0, "other-session", 5, "TYPING_START", None, b"{}"))


def test_dedupe_when_two_sets_share_shard_session_and_seq_keeps_them_apart() -> None:
    dedupe = Dedupe()
    old = [ConnKey("discord", 0, i, 4) for i in range(4)]
    new = [ConnKey("discord", 1, i, 8) for i in range(8)]
    for conn in old + new:
        assert not dedupe.duplicate(Event(conn, "s", 5, "MESSAGE_CREATE", 1, b"{}")), conn
    # Equal keys from another decode are the same connection.
    for conn in old + new:
        copy = ConnKey(conn.platform, conn.generation, conn.shard, conn.count)
        assert dedupe.duplicate(Event(copy, "s", 5, "MESSAGE_CREATE", 1, b"{}")), conn


def test_dedupe_when_past_its_window_forgets_the_oldest() -> None:
    dedupe = Dedupe(window=3)
    for seq in range(1, 5):
        assert not dedupe.duplicate(Event(C0, "s", seq, "X", None, b""))
    assert not dedupe.duplicate(Event(C0, "s", 1, "X", None, b"")), "forgotten"
    assert dedupe.duplicate(Event(C0, "s", 4, "X", None, b""))
