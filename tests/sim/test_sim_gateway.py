"""The simulated gateway against a raw client: the protocol as ../shared/PROTOCOL.md states it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import shard_for_guild
from tests.conftest import TOKEN, RawGateway, SimFactory, http_json, wait_for


async def ready_connection(
    sim: Any, shard: list[int] | None = None, mode: Compression = Compression.ZLIB_STREAM
) -> tuple[RawGateway, dict[str, Any]]:
    gw = await RawGateway.connect(sim.gateway_url, mode)
    hello = await gw.recv()
    assert hello is not None
    assert hello["op"] == 10
    await gw.identify(shard)
    ready = await gw.recv_until(lambda m: m.get("t") == "READY")
    return gw, ready


@pytest.mark.parametrize("mode", list(Compression))
async def test_identify_when_valid_gets_ready_guilds_and_gap_free_dispatches(
    sim_factory: SimFactory, mode: Compression
) -> None:
    sim = await sim_factory(shards=2, guilds_per_shard=3, rate=200)
    gw, ready = await ready_connection(sim, [1, 2], mode)
    d = ready["d"]
    assert ready["s"] == 1
    assert d["v"] == 10
    assert d["shard"] == [1, 2]
    assert d["session_id"]
    assert d["resume_gateway_url"] == sim.gateway_url
    assert d["user"]["bot"] is True
    assert d["application"]["id"]
    assert all(g["unavailable"] for g in d["guilds"])
    assert len(d["guilds"]) == 3
    creates = [await gw.recv_until(lambda m: m.get("t") == "GUILD_CREATE") for _ in range(3)]
    assert {c["d"]["id"] for c in creates} == {g["id"] for g in d["guilds"]}
    assert all(shard_for_guild(int(c["d"]["id"]), 2) == 1 for c in creates)
    while len(gw.dispatch_seqs()) < 50:
        await gw.recv()
    seqs = gw.dispatch_seqs()
    assert seqs == list(range(1, len(seqs) + 1))
    names = {m["t"] for m in gw.received if m.get("op") == 0}
    assert "MESSAGE_CREATE" in names
    await gw.close()


async def test_rest_when_token_valid_returns_gateway_bot_with_exact_json_type(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=3, max_concurrency=2, session_start_total=50)
    status, body, ctype = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert status == 200
    assert ctype == "application/json"
    assert body["url"] == sim.gateway_url
    assert body["shards"] == 3
    limit = body["session_start_limit"]
    assert limit["total"] == 50
    assert limit["remaining"] == 50
    assert limit["max_concurrency"] == 2
    assert limit["reset_after"] > 0
    gw, _ = await ready_connection(sim, [0, 3])
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["session_start_limit"]["remaining"] == 49
    for path in ("/api/v10/users/@me", "/api/v10/applications/@me", "/api/v10/oauth2/applications/@me"):
        status, body, ctype = await http_json(sim, "GET", path)
        assert status == 200
        assert ctype == "application/json"
        assert body["id"]
    status, body, _ = await http_json(sim, "GET", "/api/v10/gateway")
    assert status == 200
    assert body == {"url": sim.gateway_url}
    await gw.close()


async def test_rest_when_token_malformed_returns_401(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    for token in ("not-a-token", "abc.def", None):
        status, body, ctype = await http_json(sim, "GET", "/api/v10/gateway/bot", token=token)
        assert status == 401
        assert ctype == "application/json"
        assert body["message"] == "401: Unauthorized"
    status, _, _ = await http_json(sim, "GET", "/api/v10/nothing-here")
    assert status == 404


async def test_heartbeat_when_sent_is_acked_and_op1_request_is_sent(sim_factory: SimFactory) -> None:
    sim = await sim_factory(heartbeat_request_interval=0.2, rate=0)
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.send({"op": 1, "d": 1})
    await gw.recv_until(lambda m: m["op"] == 11)
    await gw.recv_until(lambda m: m["op"] == 1)
    await gw.close()


async def test_identify_when_bucket_reused_within_window_gets_op9_and_violation(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(identify_window=30, max_concurrency=2, shards=4)
    a, _ = await ready_connection(sim, [0, 4])
    b, _ = await ready_connection(sim, [1, 4])  # another bucket: allowed at once
    c = await RawGateway.connect(sim.gateway_url)
    await c.identify([2, 4])  # bucket 0 again, too early
    msg = await c.recv_until(lambda m: m["op"] == 9)
    assert msg["d"] is False
    stats = sim.stats()
    assert [v["kind"] for v in stats["violations"]] == ["identify_rate"]
    assert [(i["bucket"], i["accepted"]) for i in stats["identifies"]] == [(0, True), (1, True), (0, False)]
    for gw in (a, b, c):
        await gw.close()


async def test_identify_when_no_session_starts_remain_closes_4004(sim_factory: SimFactory) -> None:
    sim = await sim_factory(session_start_total=1, identify_window=0)
    a, _ = await ready_connection(sim, [0, 2])
    b = await RawGateway.connect(sim.gateway_url)
    await b.identify([1, 2])
    assert await b.expect_close() == 4004
    assert any(v["kind"] == "session_start_limit" for v in sim.stats()["violations"])
    await a.close()
    await b.close()


@pytest.mark.parametrize(
    ("options", "payload", "code"),
    [
        ({}, {"op": 2, "d": {"token": "bad", "intents": 1, "properties": {}}}, 4004),
        ({}, {"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}, "shard": [2, 2]}}, 4010),
        ({}, {"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}, "shard": [0, 0]}}, 4010),
        ({}, {"op": 2, "d": {"token": TOKEN, "intents": 1 << 30, "properties": {}}}, 4013),
        ({}, {"op": 2, "d": {"token": TOKEN, "properties": {}}}, 4013),
        (
            {"privileged_intents": 0},
            {"op": 2, "d": {"token": TOKEN, "intents": 1 << 15, "properties": {}}},
            4014,
        ),
        (
            {"shards": 1, "guilds_per_shard": 2501},
            {"op": 2, "d": {"token": TOKEN, "intents": 1, "properties": {}}},
            4011,
        ),
        ({}, {"op": 3, "d": {"status": "online"}}, 4003),
        ({}, {"op": 42, "d": None}, 4001),
        ({}, {"op": 11, "d": None}, 4001),
        ({}, {"op": "1"}, 4002),
        ({}, [1, 2, 3], 4002),
        ({}, {"op": 3, "d": {"x": "y" * 5000}}, 4002),
    ],
)
async def test_gateway_when_client_misbehaves_closes_with_discords_code(
    sim_factory: SimFactory, options: dict[str, Any], payload: Any, code: int
) -> None:
    sim = await sim_factory(**options)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.send(payload)
    assert await gw.expect_close() == code
    await gw.close()


async def test_gateway_when_frame_is_garbage_closes_4002(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.ws.send_bytes(b"\x00\xffnot json at all")
    assert await gw.expect_close() == 4002
    await gw.close()


async def test_gateway_when_authenticated_twice_closes_4005(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.resume(ready["d"]["session_id"], 1)
    assert await gw.expect_close() == 4005
    await gw.close()


async def test_gateway_when_version_or_encoding_unsupported_closes(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url.replace("ws://", "ws://"), Compression.NONE, v="6")
    assert await gw.expect_close() == 4012
    await gw.close()
    gw = await RawGateway.connect(sim.gateway_url, Compression.NONE, encoding="etf")
    assert await gw.expect_close() == 4002
    await gw.close()


async def test_gateway_when_more_than_120_commands_in_60s_closes_4008(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    for _ in range(121):
        await gw.send({"op": 1, "d": None})
    assert await gw.expect_close() == 4008
    assert any(v["kind"] == "rate_limited" for v in sim.stats()["violations"])
    await gw.close()


async def test_gateway_when_client_closes_echoes_its_code(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.ws.close(code=4321)
    assert gw.ws.close_code == 4321
    await gw.session.close()
    await wait_for(lambda: any(c["code"] == 4321 and c["by"] == "client" for c in sim.stats()["closes"]), 5)


async def resume_after(
    sim: Any, old: RawGateway, ready: dict[str, Any], mode: Compression = Compression.ZLIB_STREAM
) -> RawGateway:
    seq = max(old.dispatch_seqs())
    gw = await RawGateway.connect(sim.gateway_url, mode)
    await gw.recv()
    await gw.resume(ready["d"]["session_id"], seq)
    await gw.recv_until(lambda m: m.get("t") == "RESUMED")
    return gw


async def test_resume_when_connection_closed_resumably_replays_every_missed_dispatch(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate=300, guilds_per_shard=2)
    gw, ready = await ready_connection(sim, [0, 2])
    while len(gw.dispatch_seqs()) < 20:
        await gw.recv()
    before = gw.dispatch_seqs()
    await gw.close(4000)
    # Dispatches keep happening while the client is away.
    session_id = ready["d"]["session_id"]
    last = sim.sessions[session_id].last_seq
    await wait_for(lambda: sim.sessions[session_id].last_seq > last + 30, 10, "dispatches while away")
    gw2 = await resume_after(sim, gw, ready)
    while len(gw2.dispatch_seqs()) < 40:
        await gw2.recv()
    after = gw2.dispatch_seqs()
    assert after[0] == before[-1] + 1
    assert before + after == list(range(1, len(before) + len(after) + 1))
    resumes = sim.stats()["resumes"]
    assert resumes[-1]["accepted"]
    assert resumes[-1]["replayed"] >= 30
    await gw2.close()


async def test_resume_when_client_closed_with_1000_gets_op9_false(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(1000)
    await wait_for(lambda: sim.sessions[ready["d"]["session_id"]].ended is not None, 5, "session end")
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(ready["d"]["session_id"], 1)
    assert (await gw2.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw2.close()


async def test_resume_when_session_unknown_or_expired_gets_op9_false(sim_factory: SimFactory) -> None:
    sim = await sim_factory(resume_window=0.2)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.resume("no-such-session", 3)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw.close()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(4000)
    sid = ready["d"]["session_id"]
    await wait_for(lambda: sim.sessions[sid].ended == "resume window expired", 5, "expiry")
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(sid, 1)
    assert (await gw2.recv_until(lambda m: m["op"] == 9))["d"] is False
    await gw2.close()


async def test_resume_when_seq_is_ahead_closes_4007(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0)
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.close(4000)
    gw2 = await RawGateway.connect(sim.gateway_url)
    await gw2.recv()
    await gw2.resume(ready["d"]["session_id"], 10_000)
    assert await gw2.expect_close() == 4007
    await gw2.close()


async def fault(sim: Any, **spec: Any) -> dict[str, Any]:
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", spec)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_fault_reconnect_sends_op7(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, _ = await ready_connection(sim, [1, 2])
    body = await fault(sim, kind="reconnect", shard=1)
    assert body["applied"][0]["shard"] == [1, 2]
    await gw.recv_until(lambda m: m["op"] == 7)
    await gw.close()


@pytest.mark.parametrize("resumable", [True, False])
async def test_fault_invalid_session_sends_op9_and_ends_session_only_when_false(
    sim_factory: SimFactory, resumable: bool
) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="invalid_session", resumable=resumable)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is resumable
    assert (sim.sessions[ready["d"]["session_id"]].ended is None) is resumable
    await gw.close(4000)


async def test_fault_drop_closes_without_close_frame_and_keeps_session(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=100)
    gw, ready = await ready_connection(sim, [0, 2])
    while len(gw.dispatch_seqs()) < 5:
        await gw.recv()
    await fault(sim, kind="drop")
    while await gw.recv() is not None:
        pass
    assert gw.close_code in (1006, None) or gw.close_code > 4999 or gw.close_code == 1006
    gw2 = await resume_after(sim, gw, ready)
    await gw2.recv_until(lambda m: m.get("op") == 0)
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await gw2.close()


@pytest.mark.parametrize(("code", "survives"), [(4000, True), (4008, True), (4009, False), (4004, False)])
async def test_fault_close_applies_the_close_code_table(
    sim_factory: SimFactory, code: int, survives: bool
) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="close", code=code)
    assert await gw.expect_close() == code
    assert (sim.sessions[ready["d"]["session_id"]].ended is None) is survives
    await gw.close()


async def test_fault_zombie_stops_acks_and_stall_stops_everything(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=100)
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="zombie", duration=0.5)
    await gw.send({"op": 1, "d": None})
    got: list[int] = []
    end = asyncio.get_running_loop().time() + 0.3
    while asyncio.get_running_loop().time() < end:
        msg = await gw.recv(timeout=1)
        assert msg is not None
        got.append(msg["op"])
    assert 11 not in got
    assert 0 in got
    await fault(sim, kind="stall", duration=1.5)
    # What was written before the stall may still be on its way: take it, then nothing may come.
    sent = sim.sessions[ready["d"]["session_id"]].last_sent_seq
    while not gw.dispatch_seqs() or max(gw.dispatch_seqs()) < sent:
        await gw.recv(timeout=1)
    with pytest.raises(asyncio.TimeoutError):
        await gw.recv(timeout=0.3)
    await gw.recv_until(lambda m: m["op"] == 0, timeout=3)
    await gw.close()


async def test_fault_when_nothing_matches_is_404_and_bad_kind_400(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", {"kind": "drop", "shard": 5})
    assert status == 404
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", {"kind": "explode"})
    assert status == 400
    assert "kind must be one of" in body["message"]


async def test_heartbeat_timeout_when_client_silent_closes_4009(sim_factory: SimFactory) -> None:
    sim = await sim_factory(heartbeat_interval_ms=100, heartbeat_timeout_factor=1.5)
    gw, _ = await ready_connection(sim, [0, 2])
    assert await gw.expect_close(timeout=5) == 4009
    await gw.close()


async def test_request_guild_members_when_sent_gets_every_member_in_chunks(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=0, min_members=40, max_members=40, guilds_per_shard=1)
    gw, ready = await ready_connection(sim, [0, 2])
    gid = ready["d"]["guilds"][0]["id"]
    await gw.send({"op": 8, "d": {"guild_id": gid, "query": "", "limit": 0, "nonce": "n1"}})
    chunk = await gw.recv_until(lambda m: m.get("t") == "GUILD_MEMBERS_CHUNK")
    assert chunk["d"]["nonce"] == "n1"
    assert len(chunk["d"]["members"]) == 40
    commands = sim.stats()["commands"]
    assert commands[-1]["op"] == 8
    assert commands[-1]["shard"] == [0, 2]
    await gw.close()


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


async def test_resharding_when_two_layouts_connect_each_gets_its_own_guilds(sim_factory: SimFactory) -> None:
    sim = await sim_factory(shards=2, guilds_per_shard=4, identify_window=0)
    old, ready_old = await ready_connection(sim, [0, 2])
    new, ready_new = await ready_connection(sim, [0, 4])
    old_ids = {int(g["id"]) for g in ready_old["d"]["guilds"]}
    new_ids = {int(g["id"]) for g in ready_new["d"]["guilds"]}
    assert all(shard_for_guild(g, 2) == 0 for g in old_ids)
    assert all(shard_for_guild(g, 4) == 0 for g in new_ids)
    assert new_ids <= set(sim.world.guild_ids)
    await old.close()
    await new.close()


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


async def test_fault_invalid_session_false_lets_the_client_identify_again_on_the_same_connection(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(identify_window=0)
    gw, ready = await ready_connection(sim, [0, 2])
    await fault(sim, kind="invalid_session", resumable=False)
    await gw.recv_until(lambda m: m["op"] == 9)
    await gw.identify([0, 2])
    again = await gw.recv_until(lambda m: m.get("t") == "READY")
    assert again["d"]["session_id"] != ready["d"]["session_id"]
    await gw.close()


async def test_client_close_without_status_code_keeps_the_session_resumable(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.ws._writer.send_frame(b"", 0x8)  # a close frame with no status code
    await wait_for(lambda: sim.sessions[ready["d"]["session_id"]].conn is None, 5, "detach")
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await gw.session.close()


async def test_resume_when_token_belongs_to_another_bot_is_refused_and_leaves_the_session(
    sim_factory: SimFactory,
) -> None:
    from shardrunner.sim.discord.world import make_token

    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    other = await RawGateway.connect(sim.gateway_url)
    await other.recv()
    await other.resume(ready["d"]["session_id"], 1, token=make_token(42))
    assert (await other.recv_until(lambda m: m["op"] == 9))["d"] is False
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await other.close()
    await gw.close()


async def test_request_guild_members_when_user_ids_are_not_members_lists_them_not_found(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate=0, min_members=5, max_members=5, guilds_per_shard=1)
    gw, ready = await ready_connection(sim, [0, 2])
    gid = ready["d"]["guilds"][0]["id"]
    member = sim.world.model(int(gid)).member_ids[1]
    await gw.send({"op": 8, "d": {"guild_id": gid, "user_ids": [str(member), "12345"], "limit": 0}})
    chunk = await gw.recv_until(lambda m: m.get("t") == "GUILD_MEMBERS_CHUNK")
    assert [m["user"]["id"] for m in chunk["d"]["members"]] == [str(member)]
    assert chunk["d"]["not_found"] == ["12345"]
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
    status, _, _ = await http_json(sim, "DELETE", "/_sim/sends")
    assert status == 200
    assert sim.sends == {}
    await gw.close()


async def test_identify_when_privileged_intent_not_enabled_closes_4014(sim_factory: SimFactory) -> None:
    sim = await sim_factory(privileged_intents=1 << 1)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 2], intents=(1 << 1) | 1)
    await gw.recv_until(lambda m: m.get("t") == "READY")
    await gw.close()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([1, 2], intents=1 << 8)
    assert await gw.expect_close() == 4014
    await gw.close()


def test_make_token_when_parts_contain_a_dot_refuses() -> None:
    from shardrunner.sim.discord.world import make_token, token_user_id

    assert token_user_id(make_token(42)) == 42
    with pytest.raises(ValueError, match="contain no dot"):
        make_token(42, signature="a.b")


async def test_random_faults_when_enabled_are_injected_from_the_seeded_options(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(fault_rate=600.0, faults=("reconnect",), seed=5)  # ~10 per second
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.recv_until(lambda m: m["op"] == 7, timeout=5)
    faults = sim.stats()["faults"]
    assert faults
    assert all(f["source"] == "random" and f["kind"] == "reconnect" for f in faults)
    await gw.close()
