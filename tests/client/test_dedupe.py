"""Dropping duplicates: by (conn, session, seq), and across connection sets by content identity."""

from __future__ import annotations

import pytest

from shardrunner.client.dedupe import DUPLICATE, FRESH, STALE, CrossDedupe, Dedupe, Epochs, raw_identity
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


def test_cross_dedupe_when_the_other_generation_sends_the_same_identity_drops_it_once() -> None:
    cross = CrossDedupe()
    assert not cross.duplicate("discord", 0, "x", 0.0)
    assert cross.duplicate("discord", 1, "x", 0.5), "the new set's copy"
    assert not cross.duplicate("discord", 1, "x", 0.6), "consumed: a third is an event of its own"
    assert cross.duplicate("discord", 0, "x", 0.7), "and pairs with the old set's copy"
    assert len(cross) == 0


def test_cross_dedupe_when_one_set_sends_an_identity_twice_pairs_each_with_one_copy() -> None:
    cross = CrossDedupe()
    assert [cross.duplicate("discord", 0, "x", 0.0) for _ in range(2)] == [False, False]
    assert [cross.duplicate("discord", 1, "x", 1.0) for _ in range(3)] == [True, True, False]
    assert len(cross) == 1


def test_cross_dedupe_when_the_same_generation_repeats_never_calls_it_a_duplicate() -> None:
    cross = CrossDedupe()
    assert not any(cross.duplicate("discord", 1, "x", float(t)) for t in range(5))
    assert len(cross) == 5
    assert not cross.duplicate("twitch", 0, "x", 5.0), "another platform's generation is no set of discord's"


def test_cross_dedupe_when_the_window_passes_forgets_the_occurrence() -> None:
    cross = CrossDedupe(window_s=30.0)
    assert not cross.duplicate("discord", 0, "x", 100.0)
    assert not cross.duplicate("discord", 0, "y", 100.0)
    assert cross.duplicate("discord", 1, "x", 129.9), "inside the window"
    assert not cross.duplicate("discord", 1, "y", 130.0), "forgotten window_s after it was remembered"
    assert len(cross) == 1, "only the new set's y"


def test_cross_dedupe_when_a_matched_record_expires_keeps_a_later_occurrence_of_the_identity() -> None:
    cross = CrossDedupe(window_s=30.0)
    assert not cross.duplicate("discord", 0, "x", 0.0)
    assert cross.duplicate("discord", 1, "x", 1.0)
    assert not cross.duplicate("discord", 0, "x", 2.0), "a second event x"
    # The record of the first x (matched) expires now; the second x must stay.
    assert cross.duplicate("discord", 1, "x", 30.5)


def test_cross_dedupe_when_over_its_bound_forgets_the_oldest() -> None:
    cross = CrossDedupe(max_entries=3)
    for identity in "abcd":
        assert not cross.duplicate("discord", 0, identity, 0.0)
    assert len(cross) == 3
    assert not cross.duplicate("discord", 1, "a", 0.0), "a went first (and b now goes for this one)"
    assert [cross.duplicate("discord", 1, i, 0.0) for i in "dcb"] == [True, True, False]


def test_raw_identity_when_bodies_are_equal_is_equal() -> None:
    body = b'{"a":1}'
    assert raw_identity("X", body) == raw_identity("X", bytes(bytearray(body))), "another copy of the bytes"
    assert raw_identity("X", b'{"a":1}') != raw_identity("X", b'{"a":2}')
    assert raw_identity("X", b'{"a":1}') != raw_identity("Y", b'{"a":1}')


def test_cross_dedupe_when_repeated_occurrences_expire_forgets_them_oldest_first() -> None:
    cross = CrossDedupe(window_s=30.0)
    for t in (0.0, 10.0, 20.0):
        assert not cross.duplicate("discord", 0, "x", t)
    assert cross.duplicate("discord", 1, "x", 35.0), "the one of 10.0 (0.0 is gone)"
    assert len(cross) == 1
    assert not cross.duplicate("discord", 0, "y", 50.0), "expires the one of 20.0"
    assert not cross.duplicate("discord", 1, "x", 50.0)
    assert len(cross) == 2


def test_cross_dedupe_when_two_equal_bodies_were_received_far_apart_keeps_both() -> None:
    # The old set's copy of A (A's new copy was held), then the new set's B (B's old copy muted):
    # equal bodies, received 900 ms apart by their workers, arriving here together.
    cross = CrossDedupe()
    assert not cross.duplicate("discord", 0, "x", 0.0, stamp=10_000, window=500)
    assert not cross.duplicate("discord", 1, "x", 0.01, stamp=10_900, window=500), "another event"
    # A copy received within the window of one of them is that one's copy.
    assert cross.duplicate("discord", 1, "x", 0.02, stamp=10_100, window=500)
    assert cross.duplicate("discord", 0, "x", 0.03, stamp=10_850, window=500)
    assert len(cross) == 0


def test_cross_dedupe_when_the_window_is_zero_matches_any_stamps() -> None:
    cross = CrossDedupe()
    assert not cross.duplicate("discord", 0, "x", 0.0, stamp=1, window=0)
    assert cross.duplicate("discord", 1, "x", 0.0, stamp=99_999, window=0)


@pytest.mark.parametrize("kind", ["epochs", "dedupe"])
def test_epochs_when_a_lower_epoch_comes_after_a_higher_one_it_is_stale_per_connection(kind: str) -> None:
    """The same rule whether the client drops duplicates (Dedupe.check) or not (Epochs.check)."""
    check = Epochs().check if kind == "epochs" else Dedupe().check
    c1 = ConnKey("discord", 0, 1, 2)

    def stale(conn: ConnKey, seq: int, epoch: int, session: str = "s") -> bool:
        return check(Event(conn, session, seq, "MESSAGE_CREATE", 1, b"{}", epoch)) == STALE

    assert not stale(C0, 1, 0), "one host, no leases: nothing is stale"
    assert not stale(C0, 2, 1)
    assert not stale(c1, 1, 1)
    assert not stale(C0, 3, 2, "resumed elsewhere"), "a new holder"
    assert stale(C0, 3, 1), "the superseded holder's late copy, whichever session"
    assert stale(C0, 4, 0), "0 after a higher epoch, too"
    assert not stale(c1, 2, 1), "another connection keeps its own epoch"
    assert stale(ConnKey("discord", 0, 0, 1), 5, 1), "an equal (not identical) key"
    assert not stale(C0, 5, 2)


def test_dedupe_check_when_fresh_repeated_or_stale_says_which() -> None:
    dedupe = Dedupe()
    e = Event(C0, "s", 5, "TYPING_START", None, b"{}", 2)
    assert dedupe.check(e) == FRESH
    assert dedupe.check(e) == DUPLICATE
    assert dedupe.check(Event(C0, "s", 6, "TYPING_START", None, b"{}", 1)) == STALE
    assert dedupe.check(Event(C0, "s", 6, "TYPING_START", None, b"{}", 2)) == FRESH, (
        "a stale one is not remembered"
    )
