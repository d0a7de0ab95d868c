"""The identify buckets, the session start limit and the 120-per-60-s command limit."""

from __future__ import annotations

from tests.conftest import RawGateway, SimFactory
from tests.sim.discord.helpers import ready_connection


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


async def test_gateway_when_more_than_120_commands_in_60s_closes_4008(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    gw = await RawGateway.connect(sim.gateway_url)
    await gw.recv()
    for _ in range(121):
        await gw.send({"op": 1, "d": None})
    assert await gw.expect_close() == 4008
    assert any(v["kind"] == "rate_limited" for v in sim.stats()["violations"])
    await gw.close()
