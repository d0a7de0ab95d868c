"""The simulator's per-account windows: the same counts over a shortened window (``--join-window``,
``--message-window``), refused within it and allowed again once it has passed."""

from __future__ import annotations

from shardrunner.sim.twitch.config import TwitchSimConfig
from shardrunner.sim.twitch.limits import Account


def test_account_when_windows_are_short_counts_the_same_limits_over_them() -> None:
    account = Account("bot", TwitchSimConfig(join_window=3.0, message_window=10.0).limits("bot"))
    assert all(account.joins.take(0.1 * i) for i in range(20))
    assert not account.joins.take(2.9)  # the 21st within 3 s (refused, yet counted)
    assert account.joins.take(3.15)  # the first two are 3 s old
    sends = [account.check_message(f"c{i}", "hi", False, 0.1 * i) for i in range(20)]
    assert sends == [None] * 20
    assert account.check_message("c20", "hi", False, 9.9) == "msg_ratelimit"
    assert account.check_message("c21", "hi", False, 10.15) is None
