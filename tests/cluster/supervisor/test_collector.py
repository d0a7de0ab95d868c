"""The Prometheus families against a fake supervisor state: every family there, every value right."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from shardrunner.bus.protocol import GroupStats
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.collector import FAMILIES, STATES, MetricsView, WorkerView
from shardrunner.cluster.supervisor.metrics import render
from shardrunner.cluster.supervisor.waits import WaitHistogram
from shardrunner.protocol.keys import ConnKey

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.secret.token-never-shown"
D0, D1, D2 = (ConnKey("discord", 0, s, 3) for s in range(3))
NEW = ConnKey("discord", 1, 0, 6)
READER, SENDER = ConnKey("twitch", 0, 0, 2), ConnKey("twitch", 0, 1, 2)


def report(conn: ConnKey, state: str = "ready", **fields: Any) -> m.ConnReport:
    base: dict[str, Any] = {
        "seq": 9, "session_id": "s", "resume_url": "wss://r", "events_in": 100, "heartbeat_latency": 0.05,
        "key_count": 3, "resumes": 1, "identifies": 2, "last_resume_at": None,
    }  # fmt: skip
    return m.ConnReport(conn, state, **{**base, **fields})


def view() -> MetricsView:
    waits = WaitHistogram()
    for seconds in (0.05, 0.3, 7.0, 4000.0):
        waits.observe(seconds)
    return MetricsView(
        conns=[
            (0, D0, "ready", report(D0, bytes_in=1000, reconnects=2, decode_errors=3)),
            (0, D1, "resuming", report(D1, events_in=50, heartbeat_latency=None, bytes_in=500, resumes=3)),
            (1, D2, "starting", None),
            (1, NEW, "ready", report(NEW, events_in=7, last_error=f"boom {TOKEN}")),
            (
                2,
                READER,
                "ready",
                report(
                    READER,
                    detail={
                        "role": "read",
                        "joined": 48,
                        "joining": 2,
                        "failed": {"#gone": "msg_channel_suspended"},
                    },
                ),
            ),
            (
                2,
                SENDER,
                "ready",
                report(
                    SENDER,
                    detail={
                        "role": "send",
                        "login": "mybot",
                        "queued": 4,
                        "window": "5/20",
                        "mod_window": "1/100",
                    },
                ),
            ),
        ],
        workers=[WorkerView(0, True, 150.0, 64 << 20, 0.002, 7), WorkerView(1, False, None, None, None)],
        groups=[
            (0, GroupStats("bots", None, 2, 10, 1000, 4, 1, 500, 3, 0.25)),
            (1, GroupStats("bots", None, 2, 0, 0, 0, 0, 80, 0, 0.0)),
        ],
        identify_waiting=5,
        identify_waits={"discord": waits},
        start_limits={"discord": (990, 1000)},
        budgets=[("twitch.join", "mybot", 20, 20, 10)],
        host="host1",
    )


def samples(body: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def at(table: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return table[(name, frozenset(labels.items()))]


def test_collector_when_scraped_exports_every_family_it_declares() -> None:
    names = {name for name, _ in samples(render(view()))}
    assert names == set(FAMILIES)
    assert all(n.startswith("shardrunner_") for n in FAMILIES)


def test_collector_connections_when_scraped_show_each_state_count_and_each_connections_values() -> None:
    t = samples(render(view()))
    gen0 = {s: at(t, "shardrunner_connections", platform="discord", generation="0", state=s) for s in STATES}
    assert {s: n for s, n in gen0.items() if n} == {"ready": 1, "resuming": 1, "starting": 1}
    assert at(t, "shardrunner_connections", platform="discord", generation="1", state="ready") == 1
    d0 = {"platform": "discord", "generation": "0", "shard": "0"}
    d1 = {**d0, "shard": "1"}
    d2 = {**d0, "shard": "2"}
    assert (at(t, "shardrunner_connection_ready", **d0), at(t, "shardrunner_connection_ready", **d1)) == (
        1,
        0,
    )
    assert at(t, "shardrunner_connection_ready", **d2) == 0, "a connection nobody reported yet is not ready"
    assert at(t, "shardrunner_connection_events_total", **d1) == 50
    assert ("shardrunner_connection_events_total", frozenset(d2.items())) not in t
    assert at(t, "shardrunner_connection_heartbeat_latency_seconds", **d0) == 0.05
    assert ("shardrunner_connection_heartbeat_latency_seconds", frozenset(d1.items())) not in t
    # Bytes, reconnects, resumes, identifies and decode errors: summed per worker and platform.
    w0 = {"platform": "discord", "worker": "0"}
    assert at(t, "shardrunner_worker_received_bytes_total", **w0) == 1500
    assert at(t, "shardrunner_worker_reconnects_total", **w0) == 2
    assert at(t, "shardrunner_worker_resumes_total", **w0) == 4
    assert at(t, "shardrunner_worker_identifies_total", **w0) == 4
    assert at(t, "shardrunner_worker_identifies_total", platform="discord", worker="1") == 2
    assert at(t, "shardrunner_worker_decode_errors_total", **w0) == 3


def test_collector_identify_when_scraped_shows_the_waits_the_queue_and_the_start_budget() -> None:
    t = samples(render(view()))
    le = {
        b: at(t, "shardrunner_identify_queue_wait_seconds_bucket", platform="discord", le=b)
        for b in ("0.1", "0.5", "5.0", "10.0", "3600.0", "+Inf")
    }
    assert le == {"0.1": 1, "0.5": 2, "5.0": 2, "10.0": 3, "3600.0": 3, "+Inf": 4}
    assert at(t, "shardrunner_identify_queue_wait_seconds_count", platform="discord") == 4
    assert at(t, "shardrunner_identify_queue_wait_seconds_sum", platform="discord") == 4007.35
    assert at(t, "shardrunner_identify_queue_waiting") == 5
    assert at(t, "shardrunner_identify_session_starts_remaining", platform="discord") == 990
    assert at(t, "shardrunner_identify_session_starts_limit", platform="discord") == 1000


def test_collector_groups_and_workers_when_scraped_show_each_workers_share() -> None:
    t = samples(render(view()))
    g0 = {"group": "bots", "worker": "0"}
    assert at(t, "shardrunner_group_queued_events", **g0) == 10
    assert at(t, "shardrunner_group_queued_bytes", **g0) == 1000
    assert at(t, "shardrunner_group_inflight_events", **g0) == 4
    assert at(t, "shardrunner_group_dropped_events_total", **g0) == 1
    assert at(t, "shardrunner_group_delivered_events_total", **g0) == 500
    assert at(t, "shardrunner_group_delivered_events_total", group="bots", worker="1") == 80
    assert at(t, "shardrunner_group_redelivered_events_total", **g0) == 3
    assert at(t, "shardrunner_group_ack_lag_seconds", **g0) == 0.25
    assert at(t, "shardrunner_group_members", **g0) == 2
    assert at(t, "shardrunner_worker_cpu_usage_ratio", worker="0") == 1.5
    assert at(t, "shardrunner_worker_resident_memory_bytes", worker="0") == 64 << 20
    assert at(t, "shardrunner_worker_event_loop_lag_seconds", worker="0") == 0.002
    assert at(t, "shardrunner_worker_bus_rejected_messages_total", worker="0") == 7
    assert (at(t, "shardrunner_worker_ready", worker="0"), at(t, "shardrunner_worker_ready", worker="1")) == (
        1,
        0,
    )
    assert ("shardrunner_worker_cpu_usage_ratio", frozenset({("worker", "1")})) not in t, "unknown: absent"
    assert at(t, "shardrunner_host_info", host="host1") == 1


def test_collector_twitch_when_scraped_shows_joins_budgets_and_message_windows() -> None:
    t = samples(render(view()))
    reader = {"generation": "0", "shard": "0"}
    assert at(t, "shardrunner_twitch_channels_joined", **reader) == 48
    assert at(t, "shardrunner_twitch_joins_pending", **reader) == 2
    assert at(t, "shardrunner_twitch_channels_failed", **reader) == 1
    sender = {"generation": "0", "shard": "1", "login": "mybot"}
    assert at(t, "shardrunner_twitch_messages_in_window", **sender, window="plain") == 5
    assert at(t, "shardrunner_twitch_messages_limit", **sender, window="plain") == 20
    assert at(t, "shardrunner_twitch_messages_in_window", **sender, window="moderator") == 1
    assert at(t, "shardrunner_twitch_messages_queued", **sender) == 4
    budget = {"budget": "twitch.join", "key": "mybot"}
    assert (at(t, "shardrunner_budget_in_use", **budget), at(t, "shardrunner_budget_limit", **budget)) == (
        20,
        20,
    )
    assert at(t, "shardrunner_budget_waiting", **budget) == 10


def test_collector_when_a_report_carries_the_token_in_its_error_never_shows_it() -> None:
    body = render(view())
    assert TOKEN.encode() not in body
    assert b"secret" not in body


def test_collector_when_the_supervisor_knows_nothing_yet_still_answers() -> None:
    t = samples(render(MetricsView()))
    assert at(t, "shardrunner_identify_queue_waiting") == 0
    assert not [name for name, _ in t if name.startswith("shardrunner_connection_")]
