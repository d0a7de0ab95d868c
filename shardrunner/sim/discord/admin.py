"""The admin API for tests and benchmarks: ``/_sim/stats``, ``fault``, ``config``, ``sends``, ``guilds``
and ``dispatches``.

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
_NUMBERS: Final = frozenset({"rate", "fault_rate", "heartbeat_request_interval", "tick", "guild_growth"})
_INTS: Final = frozenset({"refuse_code"})
_INT_LISTS: Final = frozenset({"refuse_shard_counts"})
_URLS: Final = frozenset({"resume_gateway_url", "gateway_url"})
_FLAGS: Final = frozenset({"record_sends", "track_dispatches"})
_SETTABLE: Final = _NUMBERS | _INTS | _INT_LISTS | _URLS | _FLAGS
#: At most this many guilds join or leave per ``POST /_sim/guilds``.
_MAX_GUILD_CHANGE: Final = 100_000
_GUILD_KEYS: Final = ("add", "remove", "remove_ids")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_value(key: str, value: object) -> str | None:
    """What ``value`` must be for ``POST /_sim/config``'s ``key``, if it is not."""
    if key in _NUMBERS:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        kind = "a number" + (" or 'max'" if key == "rate" else "")
    elif key in _INTS:
        ok, kind = _is_int(value), "a whole number"
    elif key in _INT_LISTS:
        ok = isinstance(value, list) and all(_is_int(v) for v in value)
        kind = "a list of whole numbers"
    elif key in _FLAGS:
        ok, kind = isinstance(value, bool), "true or false"
    else:
        ok, kind = value is None or isinstance(value, str), "a URL or null"
    return None if ok else f"{key} must be {kind}"


def _guild_id(value: object) -> int | None:
    if _is_int(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


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
        guild_total=sim.world.guild_total,
        guild_joins=sim.membership.joins,
        guild_leaves=sim.membership.leaves,
        guild_joins_refused=sim.membership.joins_refused,
        identifies_refused=sim.identifies_refused,
        dispatches_generated=sim.dispatches.generated,
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
        app.router.add_get("/_sim/guilds", self.guilds)
        app.router.add_post("/_sim/guilds", self.change_guilds)
        app.router.add_get("/_sim/dispatches", self.dispatches)

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
            problem = _check_value(key, value)
            if problem is not None:
                return json_response({"message": problem}, 400)
        if "refuse_shard_counts" in body:
            body["refuse_shard_counts"] = tuple(body["refuse_shard_counts"])
        try:
            changed = self.sim.config.replace(**body)
        except ValueError as exc:
            return json_response({"message": str(exc)}, 400)
        self.sim.config = changed
        effective = {k: getattr(changed, k) for k in sorted(_SETTABLE)}
        if math.isinf(effective["rate"]):
            effective["rate"] = "max"
        effective["refuse_shard_counts"] = list(effective["refuse_shard_counts"])
        return json_response(effective)

    async def guilds(self, request: web.Request) -> web.Response:
        return json_response(self.sim.membership.summary())

    async def change_guilds(self, request: web.Request) -> web.Response:
        """``{"add": N}``, ``{"remove": N}``, ``{"remove_ids": [...]}`` (any of them; removals first)."""
        try:
            body = _json_decode(await request.read())
        except msgspec.DecodeError:
            return json_response({"message": "body is not JSON"}, 400)
        if not isinstance(body, dict) or not body or not set(body) <= set(_GUILD_KEYS):
            return json_response({"message": f"give any of {', '.join(_GUILD_KEYS)}"}, 400)
        for key in ("add", "remove"):
            value = body.get(key, 0)
            if not _is_int(value) or not 0 <= value <= _MAX_GUILD_CHANGE:
                return json_response(
                    {"message": f"{key} must be a whole number from 0 to {_MAX_GUILD_CHANGE}"}, 400
                )
        raw_ids = body.get("remove_ids", [])
        ids = [_guild_id(v) for v in raw_ids] if isinstance(raw_ids, list) else [None]
        if len(ids) > _MAX_GUILD_CHANGE or None in ids:
            return json_response({"message": "remove_ids must be a list of guild ids"}, 400)
        world = self.sim.world
        unknown = [gid for gid in ids if gid is not None and not world.has_guild(gid)]
        if unknown or len(set(ids)) < len(ids):
            what = f"unknown guild {unknown[0]}" if unknown else "a guild id is listed twice"
            return json_response({"message": f"remove_ids: {what}; nothing changed"}, 400)
        membership = self.sim.membership
        removed = membership.remove(gid for gid in ids if gid is not None)
        removed += membership.remove_random(body.get("remove", 0))
        added, refused = membership.add(body.get("add", 0))
        return json_response(
            {
                "added": [str(g) for g in added],
                "removed": [str(g) for g in removed],
                "refused": refused,
                "total": world.guild_total,
            }
        )

    async def dispatches(self, request: web.Request) -> web.Response:
        return web.Response(body=_encode(self.sim.dispatches.snapshot()), headers={"Content-Type": JSON})
