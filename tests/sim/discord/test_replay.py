"""Replay mode: prepared frames are spliced into live streams without corrupting them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.replay import prepare_scripts
from shardrunner.sim.discord.server import Simulator
from tests.conftest import RawGateway

COUNT = 700
SEGMENT = 64


@pytest.fixture
async def replay_sim() -> AsyncIterator[Callable[..., Any]]:
    sims: list[Simulator] = []

    async def start(**options: Any) -> Simulator:
        config = SimConfig(
            port=0,
            shards=1,
            guilds_per_shard=2,
            max_members=20,
            identify_window=0,
            heartbeat_interval_ms=1000,
            replay=COUNT,
            replay_segment=SEGMENT,
            replay_compress=tuple(Compression),
            **options,
        )
        sim = Simulator(config, prepare_scripts(config))
        await sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.stop()


async def identify(sim: Simulator, mode: Compression) -> tuple[RawGateway, str]:
    gw = await RawGateway.connect(sim.gateway_url, mode)
    await gw.recv()
    await gw.identify([0, 1])
    ready = await gw.recv_until(lambda m: m.get("t") == "READY")
    return gw, ready["d"]["session_id"]


def scripted(sim: Simulator, session_id: str) -> bool:
    return sim.sessions[session_id].script is not None


@pytest.mark.parametrize("mode", list(Compression))
async def test_replay_when_sent_at_full_speed_delivers_every_dispatch_in_order(
    replay_sim: Any, mode: Compression
) -> None:
    sim = await replay_sim(rate=float("inf"))
    gw, sid = await identify(sim, mode)
    assert scripted(sim, sid)
    total = 1 + 2 + COUNT
    while len(gw.dispatch_seqs()) < total:
        assert await gw.recv() is not None
    assert gw.dispatch_seqs() == list(range(1, total + 1))
    script = sim.sessions[sid].script
    assert script is not None
    # Prepared frames decode to exactly the payloads the script describes.
    assert [m for m in gw.received if m["op"] == 0][-1]["t"] == script.payload(COUNT - 1).split(b'"')[
        3
    ].decode()
    ids = [m["d"]["id"] for m in gw.received if m.get("t") == "MESSAGE_CREATE"]
    assert len(ids) == len(set(ids)), "every scripted message has its own id"
    await gw.close()


@pytest.mark.parametrize("mode", [Compression.ZLIB_STREAM, Compression.ZSTD_STREAM])
async def test_replay_when_live_payloads_interleave_stream_stays_decodable(
    replay_sim: Any, mode: Compression
) -> None:
    # A slow script with heartbeats in between: every ACK forces the live path mid-segment.
    sim = await replay_sim(rate=3000)
    gw, _sid = await identify(sim, mode)
    total = 3 + COUNT
    acks = 0
    while len(gw.dispatch_seqs()) < total:
        msg = await gw.recv()
        assert msg is not None
        if msg["op"] == 0 and msg["s"] % 50 == 0:
            await gw.send({"op": 1, "d": msg["s"]})
        acks += msg["op"] == 11
    assert gw.dispatch_seqs() == list(range(1, total + 1))
    while acks < COUNT // 50:
        msg = await gw.recv()
        assert msg is not None
        acks += msg["op"] == 11
    await gw.close()


@pytest.mark.parametrize("mode", list(Compression))
async def test_replay_when_resumed_mid_script_replays_and_rejoins_prepared_frames(
    replay_sim: Any, mode: Compression
) -> None:
    sim = await replay_sim(rate=4000)
    gw, sid = await identify(sim, mode)
    while len(gw.dispatch_seqs()) < 150:
        assert await gw.recv() is not None
    first = gw.dispatch_seqs()
    await gw.close(4000)
    gw2 = await RawGateway.connect(sim.gateway_url, mode)
    await gw2.recv()
    await gw2.resume(sid, first[-1])
    total = 3 + COUNT
    while not gw2.dispatch_seqs() or gw2.dispatch_seqs()[-1] < total:
        assert await gw2.recv() is not None
    assert first + gw2.dispatch_seqs() == list(range(1, total + 1))
    assert any(m.get("t") == "RESUMED" for m in gw2.received)
    await gw2.close()


async def resume(sim: Simulator, mode: Compression, sid: str, seq: int, after: int = 0) -> RawGateway:
    """A connection that resumed ``sid`` from ``seq`` and got its own RESUMED (seq above ``after``)."""
    gw = await RawGateway.connect(sim.gateway_url, mode)
    await gw.recv()
    await gw.resume(sid, seq)
    await gw.recv_until(lambda m: m.get("t") == "RESUMED" and m["s"] > after)
    return gw


def resumed_seqs(gw: RawGateway) -> list[int]:
    return [m["s"] for m in gw.received if m.get("t") == "RESUMED"]


def assert_scripted_payloads(sim: Simulator, sid: str, gw: RawGateway) -> None:
    """Every scripted dispatch carries the seq and body its prepared frame was made with."""
    script = sim.sessions[sid].script
    assert script is not None
    for m in gw.received:
        if m["op"] == 0 and m["t"] != "RESUMED" and m["s"] >= script.first_seq:
            assert m == msgspec.json.decode(script.payload(m["s"] - script.first_seq))


@pytest.mark.parametrize("mode", list(Compression))
async def test_replay_when_resumed_mid_script_resumed_takes_the_next_seq_and_the_script_stays_aligned(
    replay_sim: Any, mode: Compression
) -> None:
    sim = await replay_sim(rate=4000)
    gw, sid = await identify(sim, mode)
    while len(gw.dispatch_seqs()) < 100:
        assert await gw.recv() is not None
    first = gw.dispatch_seqs()
    await gw.close(4000)
    gw2 = await resume(sim, mode, sid, first[-1])
    (record,) = sim.stats()["resumes"]
    (resumed,) = resumed_seqs(gw2)
    assert resumed == first[-1] + record["replayed"] + 1
    # A second resume from RESUMED's own seq replays only what followed it.
    while len(gw2.dispatch_seqs()) < record["replayed"] + 1 + 100:
        assert await gw2.recv() is not None
    assert gw2.dispatch_seqs()[record["replayed"] + 1] == resumed + 1
    second = gw2.dispatch_seqs()
    await gw2.close(4000)
    gw3 = await resume(sim, mode, sid, resumed, after=resumed)
    total = 3 + COUNT  # the script's slots: RESUMEDs took two of them
    while gw3.dispatch_seqs()[-1] < total:
        assert await gw3.recv() is not None
    assert gw3.dispatch_seqs()[0] == resumed + 1
    (again,) = resumed_seqs(gw3)
    seqs = first + second + [s for s in gw3.dispatch_seqs() if s > second[-1]]
    assert seqs == list(range(1, total + 1))
    for conn in (gw2, gw3):
        assert_scripted_payloads(sim, sid, conn)
    session = sim.sessions[sid]
    assert session.last_seq == session.last_sent_seq == total
    assert session.resumed == [resumed, again]
    assert sim.stats()["violations"] == []
    await gw3.close()


@pytest.mark.parametrize("mode", [Compression.ZLIB_STREAM, Compression.NONE])
async def test_replay_when_resumed_after_the_script_ran_out_resumed_still_takes_the_next_seq(
    replay_sim: Any, mode: Compression
) -> None:
    sim = await replay_sim(rate=float("inf"))
    gw, sid = await identify(sim, mode)
    total = 3 + COUNT
    while len(gw.dispatch_seqs()) < total:
        assert await gw.recv() is not None
    await gw.close(4000)
    gw2 = await resume(sim, mode, sid, total)
    assert gw2.dispatch_seqs() == [total + 1]
    await gw2.close(4000)
    # From before that RESUMED: it is replayed in its place, then the new one follows.
    gw3 = await resume(sim, mode, sid, total - 2, after=total + 1)
    assert gw3.dispatch_seqs() == [total - 1, total, total + 1, total + 2]
    assert resumed_seqs(gw3) == [total + 1, total + 2]
    assert_scripted_payloads(sim, sid, gw3)
    session = sim.sessions[sid]
    assert session.last_seq == session.last_sent_seq == total + 2
    await gw3.close()


async def test_replay_when_client_uses_other_shard_count_falls_back_to_live(replay_sim: Any) -> None:
    sim = await replay_sim(rate=1000)
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    await gw.identify([0, 2])
    ready = await gw.recv_until(lambda m: m.get("t") == "READY")
    assert not scripted(sim, ready["d"]["session_id"])
    await gw.recv_until(lambda m: m.get("t") not in (None, "READY", "GUILD_CREATE"))
    await gw.close()


def test_replay_script_when_built_gives_only_created_messages_fresh_ids() -> None:
    from shardrunner.sim.discord.replay import _build

    config = SimConfig(shards=1, guilds_per_shard=2, max_members=20, replay=3000)
    script = _build(config, 0, Compression.NONE)
    created: set[str] = set()
    for i in range(3000):
        msg = msgspec.json.decode(script.payload(i))
        assert msg["s"] == script.first_seq + i
        d = msg["d"]
        if msg["t"] == "MESSAGE_CREATE":
            assert d["id"] not in created
            created.add(d["id"])
        elif msg["t"] == "MESSAGE_REACTION_ADD" and "member" in d:
            assert d["member"]["user"]["id"] == d["user_id"], "nested ids are left alone"
    assert len(created) > 1000
