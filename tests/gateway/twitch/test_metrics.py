"""Twitch's metric families from its connections' details: readers' joins, senders' windows."""

from __future__ import annotations

from shardrunner.gateway.platform import detail_metrics
from shardrunner.gateway.twitch.metrics import TwitchMetrics


def values(metrics: TwitchMetrics) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, tuple(s.labels.values())): s.value for f in metrics.families() for s in f.samples}


def test_twitch_metrics_when_fed_a_reader_and_a_sender_show_joins_windows_and_queue() -> None:
    metrics = detail_metrics()["twitch"]
    assert isinstance(metrics, TwitchMetrics)
    metrics.add(["0", "3"], {"role": "read", "joined": 40, "joining": 10, "failed": {"#a": "x", "#b": "y"}})
    metrics.add(
        ["0", "4"], {"role": "send", "login": "bot", "queued": 2, "window": "7/20", "mod_window": "3/100"}
    )
    got = values(metrics)
    assert got[("shardrunner_twitch_channels_joined", ("0", "3"))] == 40
    assert got[("shardrunner_twitch_joins_pending", ("0", "3"))] == 10
    assert got[("shardrunner_twitch_channels_failed", ("0", "3"))] == 2
    assert got[("shardrunner_twitch_messages_in_window", ("0", "4", "bot", "plain"))] == 7
    assert got[("shardrunner_twitch_messages_limit", ("0", "4", "bot", "moderator"))] == 100
    assert got[("shardrunner_twitch_messages_queued", ("0", "4", "bot"))] == 2


def test_twitch_metrics_when_a_window_is_unreadable_leave_it_out() -> None:
    metrics = TwitchMetrics()
    metrics.add(["0", "1"], {"role": "send", "login": "bot", "window": "n/a"})
    got = values(metrics)
    assert not [k for k in got if k[0] == "shardrunner_twitch_messages_in_window"]
    assert got[("shardrunner_twitch_messages_queued", ("0", "1", "bot"))] == 0
