"""The admin API: stats, run-time settings, recorded sends, refused fault specs."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import SimFactory, http_json
from tests.sim.discord.helpers import ready_connection


async def test_fault_when_nothing_matches_is_404_and_bad_kind_400(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", {"kind": "drop", "shard": 5})
    assert status == 404
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", {"kind": "explode"})
    assert status == 400
    assert "kind must be one of" in body["message"]


async def test_stats_when_running_report_identifies_sessions_and_shards(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=200)
    gw, _ready = await ready_connection(sim, [0, 2])
    while len(gw.dispatch_seqs()) < 30:
        await gw.recv()
    status, stats, ctype = await http_json(sim, "GET", "/_sim/stats")
    assert status == 200
    assert ctype == "application/json"
    assert stats["identifies"][0]["bucket"] == 0
    assert stats["identifies"][0]["time"] > 0
    shard = stats["shards"][0]
    assert shard["shard"] == 0
    assert shard["num_shards"] == 2
    assert shard["dispatches_sent"] >= 30
    assert shard["last_seq_sent"] >= 30
    await gw.close()


async def test_config_when_posted_changes_rate_at_run_time(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0)
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": 500})
    assert status == 200
    assert body["rate"] == 500
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.recv_until(lambda m: m.get("t") not in (None, "READY", "GUILD_CREATE"))
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": -1})
    assert status == 400
    assert "--rate" in body["message"]
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"shards": 3})
    assert status == 400
    await gw.close()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "close", "code": "abc"}, "Expected `int`, got `str`"),
        ({"kind": "close", "code": 1005}, "code 1005 cannot be sent"),
        ({"kind": "stall", "duration": -1}, "duration must be positive"),
        ({"kind": "drop", "shrad": 0}, "unknown field `shrad`"),
    ],
)
async def test_fault_when_spec_invalid_is_refused_before_anything_happens(
    sim_factory: SimFactory, spec: dict[str, Any], message: str
) -> None:
    sim = await sim_factory()
    gw, _ = await ready_connection(sim, [0, 2])
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", spec)
    assert status == 400
    assert message in body["message"]
    assert sim.stats()["faults"] == []
    await gw.close()


async def test_config_when_rate_is_max_or_of_the_wrong_type(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0)
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": "max"})
    assert status == 200
    assert body["rate"] == "max"
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": "fast"})
    assert status == 400
    assert body["message"] == "rate must be a number or 'max'"


async def test_sends_when_recorded_give_each_write_its_last_seq_and_time(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0)
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"record_sends": True, "tick": 0.002})
    assert status == 200
    assert body["record_sends"] is True
    assert body["tick"] == 0.002
    before = time.monotonic_ns()
    gw, _ = await ready_connection(sim, [0, 2])
    await http_json(sim, "POST", "/_sim/config", {"rate": 200})
    seen = await gw.recv_until(lambda m: m.get("t") not in (None, "READY", "GUILD_CREATE"))
    status, body, _ = await http_json(sim, "GET", "/_sim/sends")
    assert status == 200
    (entry,) = body["sessions"]
    assert entry["shard"] == 0
    assert entry["last_seq"] == sorted(entry["last_seq"])
    assert entry["last_seq"][-1] >= seen["s"]
    assert before <= entry["t_ns"][0] <= entry["t_ns"][-1] <= time.monotonic_ns()
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"record_sends": 1})
    assert status == 400
    assert body["message"] == "record_sends must be true or false"
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"tick": 5})
    assert status == 400
    assert "--tick" in body["message"]
    # Recording off first: a write between the DELETE and the check would record again.
    status, _, _ = await http_json(sim, "POST", "/_sim/config", {"record_sends": False})
    assert status == 200
    assert sim.sends
    status, _, _ = await http_json(sim, "DELETE", "/_sim/sends")
    assert status == 200
    assert sim.sends == {}
    await gw.close()
