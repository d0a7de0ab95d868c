"""The sending connection's limits without I/O: windows counted from the writes with the margin,
the per-channel interval for non-moderators only, and the duplicate key of Twitch's rule."""

from __future__ import annotations

import pytest

from shardrunner.gateway.twitch.pacing import MARGIN_S, Pacer, Window, duplicate_key
from shardrunner.identify.budget import margin_for
from shardrunner.protocol.twitch import TwitchLimits


def test_pacing_when_a_window_is_full_waits_for_its_oldest_write_plus_the_margin() -> None:
    w = Window(2, 30.0)
    assert w.wait(0.0) == 0.0
    w.add(0.0)
    w.add(1.0)
    assert w.wait(1.0) == pytest.approx(29.0 + MARGIN_S)
    assert w.wait(30.0 + MARGIN_S) == 0.0
    assert w.used(30.0 + MARGIN_S) == 1


def test_pacing_when_not_moderator_keeps_the_channel_interval_and_the_account_window() -> None:
    p = Pacer(TwitchLimits(privmsg_count=3, privmsg_window=30.0, channel_interval=1.0))
    p.record("a", False, 0.0)
    assert p.wait("a", False, 0.5) == pytest.approx(0.5 + margin_for(1.0))
    assert p.wait("b", False, 0.5) == 0.0, "another channel does not wait"
    assert p.wait("a", True, 0.5) == 0.0, "no interval where moderator"
    p.record("b", False, 0.5)
    p.record("c", False, 0.6)
    assert p.wait("d", False, 0.7) == pytest.approx(30.0 + MARGIN_S - 0.7), "the account's window is full"
    assert p.wait("d", True, 0.7) == 0.0, "the moderator window is another budget"


def test_pacing_when_comparing_texts_collapses_spaces_and_trims_to_500_characters() -> None:
    assert duplicate_key("  a   b ") == "a b"
    assert duplicate_key("x" * 500 + "tail") == "x" * 500
    assert duplicate_key("hi \U000e0000") != duplicate_key("hi")
