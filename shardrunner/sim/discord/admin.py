"""The admin API for tests and benchmarks: ``/_sim/stats``, ``fault``, ``config`` and ``sends``.

See docs/simulator.md ("Admin API", "Fault injection") for each body and answer.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web

from shardrunner.sim.discord.config import FAULT_KINDS
from shardrunner.sim.discord.faults import FaultSpec
from shardrunner.sim.discord.rest import JSON, json_response
from shardrunner.sim.discord.wsframe import sendable_close_code

if TYPE_CHECKING:
    from shardrunner.sim.discord.server import Simulator

_json_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.encode
#: What ``POST /_sim/config`` may change, by the kind of value each takes.
_NUMBERS: Final = frozenset({"rate", "fault_rate", "heartbeat_request_interval", "tick"})
_URLS: Final = frozenset({"resume_gateway_url", "gateway_url"})
_FLAGS: Final = frozenset({"record_sends"})
_SETTABLE: Final = _NUMBERS | _URLS | _FLAGS


def stats(sim: Simulator) -> dict[str, Any]:
    """Everything ``GET /_sim/stats`` returns."""
    sessions = []
    shards: dict[tuple[int, int], dict[str, Any]] = {}
    for s in sim.sessions.values():
        entry = {
            "session_id": s.id,
            "shard": [s.shard_id, s.num_shards],
            "last_seq": s.last_seq if s.ended is None else s.last_sent_seq,
            "last_sent_seq": s.last_sent_seq,
            "connected": s.conn is not None,
            "ended": s.ended,
        }
        sessions.append(entry)
        agg = shards.setdefault(
            (s.shard_id, s.num_shards),
            {"shard": s.shard_id, "num_shards": s.num_shards, "sessions": 0, "dispatches_sent": 0},
        )
        agg["sessions"] += 1
        agg["dispatches_sent"] += s.last_sent_seq
        agg["session_id"] = s.id
        agg["last_seq_sent"] = s.last_sent_seq
        agg["connected"] = s.conn is not None
    out: dict[str, Any] = {name: list(items) for name, items in sim.recorder.lists.items()}
    out.update(
        started=sim.started,
        now=time.time(),
        connections=len(sim.connections),
        session_start_limit={
            "total": sim.config.session_start_total,
            "remaining": sim.limits.starts_remaining,
            "max_concurrency": sim.config.max_concurrency,
        },
        identify_window=sim.config.identify_window,
        sessions=sessions,
        shards=sorted(shards.values(), key=lambda e: (e["num_shards"], e["shard"])),
    )
    return out


class Admin:
    """The ``/_sim`` handlers of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_sim/stats", self.stats)
        app.router.add_post("/_sim/fault", self.fault)
        app.router.add_post("/_sim/config", self.set_config)
        app.router.add_get("/_sim/sends", self.sends)
        app.router.add_delete("/_sim/sends", self.sends)

    async def stats(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(stats(self.sim)), headers={"Content-Type": JSON})

    async def fault(self, request: web.Request) -> web.Response:
        try:
            spec = _json_decode(await request.read())
        except msgspec.DecodeError:
            return json_response({"message": "body is not JSON"}, 400)
        if not isinstance(spec, dict) or spec.get("kind") not in FAULT_KINDS:
            return json_response({"message": f"kind must be one of {', '.join(FAULT_KINDS)}"}, 400)
        try:
            checked = msgspec.convert(spec, FaultSpec)
        except msgspec.ValidationError as exc:
            return json_response({"message": f"invalid fault: {exc}"}, 400)
        if not sendable_close_code(checked.code):
            return json_response({"message": f"code {checked.code} cannot be sent in a close frame"}, 400)
        targets = []
        for conn in list(self.sim.connections):
            s = conn.session
            if s is None or conn.closing:
                continue
            if "session_id" in spec and s.id != spec["session_id"]:
                continue
            if "shard" in spec and s.shard_id != spec["shard"]:
                continue
            if "num_shards" in spec and s.num_shards != spec["num_shards"]:
                continue
            targets.append(conn)
        if not targets:
            return json_response({"message": "no connected session matches", "applied": []}, 404)
        applied = []
        given = {k: v for k, v in msgspec.structs.asdict(checked).items() if k in spec}
        for conn in targets:
            applied.append(conn.describe())
            await self.sim.faults.apply(conn, {"kind": checked.kind, **given}, source="admin")
        return json_response({"applied": applied})

    async def sends(self, request: web.Request) -> web.Response:
        """GET: the recorded writes per session; DELETE: forget them."""
        sends = self.sim.sends
        if request.method == "DELETE":
            sends.clear()
            return json_response({"cleared": True})
        return json_response(
            {
                "clock": "CLOCK_MONOTONIC, nanoseconds",
                "sessions": [
                    {"session_id": sid, "shard": shard, "last_seq": seqs.tolist(), "t_ns": times.tolist()}
                    for sid, (shard, seqs, times) in sends.items()
                ],
            }
        )

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            body = _json_decode(await request.read())
        except msgspec.DecodeError:
            return json_response({"message": "body is not JSON"}, 400)
        if not isinstance(body, dict) or not set(body) <= _SETTABLE:
            return json_response({"message": f"settable at run time: {', '.join(sorted(_SETTABLE))}"}, 400)
        if body.get("rate") == "max":
            body["rate"] = math.inf
        for key, value in body.items():
            if key in _NUMBERS:
                ok = isinstance(value, int | float) and not isinstance(value, bool)
                kind = "a number" + (" or 'max'" if key == "rate" else "")
            elif key in _FLAGS:
                ok, kind = isinstance(value, bool), "true or false"
            else:
                ok, kind = value is None or isinstance(value, str), "a URL or null"
            if not ok:
                return json_response({"message": f"{key} must be {kind}"}, 400)
        try:
            changed = self.sim.config.replace(**body)
        except ValueError as exc:
            return json_response({"message": str(exc)}, 400)
        self.sim.config = changed
        effective = {k: getattr(changed, k) for k in sorted(_SETTABLE)}
        if math.isinf(effective["rate"]):
            effective["rate"] = "max"
        return json_response(effective)
