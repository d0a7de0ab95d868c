"""The metrics endpoint of a supervisor on fakes: served from its own state, never the token, and a
port in use is one sentence at start."""

from __future__ import annotations

import socket

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from shardrunner.cluster.supervisor.metrics import snapshot
from tests.cluster.supervisor.conftest import Make
from tests.cluster.supervisor.fakes import TOKEN, FakePlan, conns


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def scrape(port: int) -> str:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await resp.text()


async def test_metrics_when_scraped_show_the_supervisors_reports_and_never_the_token(rig: Make) -> None:
    port = free_port()
    r = await rig(plans=[FakePlan(conns(4))], workers=2, groups="bot", metrics_port=port)
    await r.ready()
    await r.advance(1.0)  # a report of every worker after they were ready
    text = await scrape(port)
    assert TOKEN not in text
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    ready = [v for (name, _), v in values.items() if name == "shardrunner_connection_ready"]
    assert ready == [1, 1, 1, 1]
    events = [v for (name, _), v in values.items() if name == "shardrunner_connection_events_total"]
    assert events == [10, 10, 10, 10], "the fake workers report 10 events per connection"
    assert values[("shardrunner_worker_resident_memory_bytes", (("worker", "0"),))] == 50 << 20
    assert values[("shardrunner_identify_queue_wait_seconds_count", (("platform", "discord"),))] == 4
    view = snapshot(r.sup)
    assert [slot for slot, *_ in view.conns] == [0, 0, 1, 1]
    r.sup.request_stop()
    assert await r.exit_code() == 0


async def test_metrics_when_the_port_is_taken_the_start_fails_in_one_sentence(rig: Make) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = await rig(metrics_port=port)
        assert await r.exit_code() == 1
    assert r.sup.error is not None
    assert r.sup.error.startswith(f"cannot serve metrics on 127.0.0.1:{port} (")
    assert r.sup.error.endswith("choose another --metrics-port, or 0 for none")
