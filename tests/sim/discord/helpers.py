"""Helpers of the simulator's in-process tests: a connection with READY, a resume, a fault."""

from __future__ import annotations

from typing import Any

from shardrunner.protocol.compression import Compression
from tests.conftest import RawGateway, http_json


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


async def resume_after(
    sim: Any, old: RawGateway, ready: dict[str, Any], mode: Compression = Compression.ZLIB_STREAM
) -> RawGateway:
    seq = max(old.dispatch_seqs())
    gw = await RawGateway.connect(sim.gateway_url, mode)
    await gw.recv()
    await gw.resume(ready["d"]["session_id"], seq)
    await gw.recv_until(lambda m: m.get("t") == "RESUMED")
    return gw


async def fault(sim: Any, **spec: Any) -> dict[str, Any]:
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", spec)
    assert status == 200, body
    return body  # type: ignore[no-any-return]
