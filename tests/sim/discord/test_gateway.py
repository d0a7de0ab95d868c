"""One gateway connection against a raw client: HELLO, heartbeats, payload checks, closes, op 8."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import shard_for_guild
from tests.conftest import TOKEN, RawGateway, SimFactory, http_json, wait_for
from tests.sim.discord.helpers import fault, ready_connection


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


async def test_heartbeat_when_sent_is_acked_and_op1_request_is_sent(sim_factory: SimFactory) -> None:
    sim = await sim_factory(heartbeat_request_interval=0.2, rate=0)
    gw, _ = await ready_connection(sim, [0, 2])
    await gw.send({"op": 1, "d": 1})
    await gw.recv_until(lambda m: m["op"] == 11)
    await gw.recv_until(lambda m: m["op"] == 1)
    await gw.close()


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


async def test_gateway_when_client_closes_echoes_its_code(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.ws.close(code=4321)
    assert gw.ws.close_code == 4321
    await gw.session.close()
    await wait_for(lambda: any(c["code"] == 4321 and c["by"] == "client" for c in sim.stats()["closes"]), 5)


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


async def test_client_close_without_status_code_keeps_the_session_resumable(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw, ready = await ready_connection(sim, [0, 2])
    await gw.ws._writer.send_frame(b"", 0x8)  # a close frame with no status code
    await wait_for(lambda: sim.sessions[ready["d"]["session_id"]].conn is None, 5, "detach")
    assert sim.sessions[ready["d"]["session_id"]].ended is None
    await gw.session.close()


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


async def op9_after_dispatches(sim: Any, gw: RawGateway, resumable: bool) -> int:
    """Let dispatches flow, inject op 9; return the last seq received before it."""
    while len(gw.dispatch_seqs()) < 10:
        await gw.recv()
    await fault(sim, kind="invalid_session", resumable=resumable)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is resumable
    return max(gw.dispatch_seqs())


async def test_gateway_when_op9_true_stops_streaming_and_accepts_resume_on_the_same_connection(
    sim_factory: SimFactory,
) -> None:
    # A long heartbeat interval: the raw client does not heartbeat, and nothing here waits for 4009.
    sim = await sim_factory(rate=200, heartbeat_interval_ms=30_000)
    gw, ready = await ready_connection(sim, [0, 2])
    sid = ready["d"]["session_id"]
    seq = await op9_after_dispatches(sim, gw, resumable=True)
    session = sim.sessions[sid]
    assert session.ended is None
    assert session.conn is None  # detached: kept for RESUME, streamed nowhere
    # Dispatches keep being logged for the session; none of them may reach this connection now.
    await wait_for(lambda: session.last_seq > seq + 20, 5, "dispatches logged while detached")
    assert max(gw.dispatch_seqs()) == seq
    with pytest.raises(asyncio.TimeoutError):
        await gw.recv(timeout=0.2)
    await gw.resume(sid, seq)
    resumed = await gw.recv_until(lambda m: m.get("t") == "RESUMED")
    assert resumed["s"] >= seq + 20
    await gw.recv_until(lambda m: m.get("op") == 0 and m["s"] > resumed["s"])
    seqs = gw.dispatch_seqs()
    assert seqs == list(range(1, len(seqs) + 1))  # every dispatch once: replayed from seq, then live
    assert session.conn is not None
    assert gw.close_code is None
    stats = sim.stats()
    assert [(r["accepted"], r["seq"]) for r in stats["resumes"]] == [(True, seq)]
    assert len(stats["identifies"]) == 1
    assert stats["violations"] == []
    await gw.close()


async def test_gateway_when_op9_true_accepts_identify_on_the_same_connection(sim_factory: SimFactory) -> None:
    sim = await sim_factory(rate=200, identify_window=0, heartbeat_interval_ms=30_000)
    gw, ready = await ready_connection(sim, [0, 2])
    await op9_after_dispatches(sim, gw, resumable=True)
    await gw.identify([0, 2])
    again = await gw.recv_until(lambda m: m.get("t") == "READY")
    assert again["d"]["session_id"] != ready["d"]["session_id"]
    assert again["s"] == 1
    old = sim.sessions[ready["d"]["session_id"]]
    assert old.ended is None  # resumable elsewhere until its resume window runs out
    assert old.conn is None
    assert sim.stats()["violations"] == []
    await gw.close()


async def test_gateway_when_op9_false_stops_streaming_and_refuses_resume_on_the_same_connection(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(rate=200, identify_window=0, heartbeat_interval_ms=30_000)
    gw, ready = await ready_connection(sim, [0, 2])
    sid = ready["d"]["session_id"]
    seq = await op9_after_dispatches(sim, gw, resumable=False)
    assert sim.sessions[sid].ended is not None
    with pytest.raises(asyncio.TimeoutError):
        await gw.recv(timeout=0.2)
    assert max(gw.dispatch_seqs()) == seq
    await gw.resume(sid, seq)
    assert (await gw.recv_until(lambda m: m["op"] == 9))["d"] is False
    assert gw.close_code is None  # still open: the client may IDENTIFY here
    await gw.identify([0, 2])
    await gw.recv_until(lambda m: m.get("t") == "READY")
    await gw.close()


async def test_heartbeat_timeout_when_client_only_answers_op1_lasts_while_requests_come_faster(
    sim_factory: SimFactory,
) -> None:
    # Timeout 0.4 s, a request every 0.05 s: answering op 1 alone keeps the connection alive...
    sim = await sim_factory(
        heartbeat_interval_ms=200, heartbeat_timeout_factor=2, heartbeat_request_interval=0.05
    )
    gw, _ = await ready_connection(sim, [0, 2])
    answered = 0
    while answered < 24:  # about 1.2 s: three timeouts
        msg = await gw.recv(timeout=5)
        assert msg is not None, f"closed with {gw.close_code} while answering op 1"
        if msg["op"] == 1:
            await gw.send({"op": 1, "d": None})
            answered += 1
    # ...and once the gateway stops asking (0: never), the same client is timed out.
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"heartbeat_request_interval": 0})
    assert status == 200, body
    while (msg := await gw.recv(timeout=5)) is not None:
        if msg["op"] == 1:
            await gw.send({"op": 1, "d": None})
    assert gw.close_code == 4009
    assert [v["kind"] for v in sim.stats()["violations"]] == ["heartbeat_timeout"]
    await gw.close()


async def test_heartbeat_timeout_when_defaults_and_client_only_answers_op1_closes_with_4009(
    sim_factory: SimFactory,
) -> None:
    # With the default settings the gateway asks for no heartbeat, so a client that never sends
    # one on its own is timed out, as Discord does (which sends op 1 rarely).
    sim = await sim_factory(heartbeat_interval_ms=100, heartbeat_timeout_factor=2)
    assert sim.config.heartbeat_request_interval == 0
    gw, _ = await ready_connection(sim, [0, 2])
    while (msg := await gw.recv(timeout=5)) is not None:
        assert msg["op"] != 1, "the gateway asked for a heartbeat under the default settings"
    assert gw.close_code == 4009
    await gw.close()
