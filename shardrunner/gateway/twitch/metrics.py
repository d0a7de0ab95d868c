"""Twitch's families in the supervisor's metrics (docs/metrics.md), from what its connections'
``describe()`` show (:mod:`.reader`, :mod:`.sender`): a reading connection's channels joined, being
joined and failed; a sending connection's pacing windows and queue. Labels: the connection's
generation and shard, and a sender's login; never a channel's name (unbounded) or a token."""

from __future__ import annotations

from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric

P: Final = "shardrunner_twitch_"


def _window(text: Any) -> tuple[float, float] | None:
    """``"3/20"`` (a sender's window: used/limit) as numbers."""
    used, _, limit = str(text).partition("/")
    try:
        return float(used), float(limit)
    except ValueError:
        return None


class TwitchMetrics:
    """The families of one scrape (a :class:`~shardrunner.gateway.platform.DetailMetrics`)."""

    def __init__(self) -> None:
        labels = ["generation", "shard"]
        self.joined = GaugeMetricFamily(
            P + "channels_joined", "channels the reading connection joined", labels=labels
        )
        self.pending = GaugeMetricFamily(P + "joins_pending", "channels being joined", labels=labels)
        self.failed = GaugeMetricFamily(P + "channels_failed", "channels whose join failed", labels=labels)
        send = [*labels, "login", "window"]
        self.sent = GaugeMetricFamily(
            P + "messages_in_window", "messages sent in the pacing window", labels=send
        )
        self.limit = GaugeMetricFamily(P + "messages_limit", "messages the pacing window allows", labels=send)
        self.queued = GaugeMetricFamily(
            P + "messages_queued", "messages waiting to be sent", labels=[*labels, "login"]
        )

    def add(self, labels: list[str], detail: dict[str, Any]) -> None:
        if detail.get("role") == "send":
            login = str(detail.get("login", ""))
            self.queued.add_metric([*labels, login], float(detail.get("queued", 0)))
            for window, key in (("plain", "window"), ("moderator", "mod_window")):
                pair = _window(detail.get(key, ""))
                if pair is not None:
                    self.sent.add_metric([*labels, login, window], pair[0])
                    self.limit.add_metric([*labels, login, window], pair[1])
            return
        self.joined.add_metric(labels, float(detail.get("joined", 0)))
        self.pending.add_metric(labels, float(detail.get("joining", 0)))
        self.failed.add_metric(labels, float(len(detail.get("failed") or {})))

    def families(self) -> tuple[Metric, ...]:
        return (self.joined, self.pending, self.failed, self.sent, self.limit, self.queued)
