"""The admin API of the Twitch chat simulator, for tests and benchmarks (docs/simulator-twitch.md):

- ``GET /_sim/stats``: logins, joins, parts, client messages (accepted or why not), violations,
  closes, faults, connections, and per channel the ids of generated messages;
- ``POST /_sim/fault``: ``{"kind": ..., "connection": id | "account": login | "channel": name,
  "seconds": s, "lines": n, "count": n}`` (``server_change``: ``"how": "reconnect" | "notice"``,
  ``"server"``);
- ``POST /_sim/config``: run-time settings (``rate``, ``ping_interval``, ``pong_timeout``,
  ``reconnect_grace``, ``duplicate_rate``, ``swap_rate``, ``fault_rate``, ``slow_kill``);
- ``POST /_sim/channels``: ``{"add": [names], "suspend": [names], "unsuspend": [names]}``.

Tokens are never in any answer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import msgspec
from aiohttp import web

from shardrunner.protocol.twitch import normalize_channel
from shardrunner.sim.twitch.config import FAULT_KINDS, ConfigError

if TYPE_CHECKING:
    from shardrunner.sim.twitch.server import TwitchSimulator

_NUMBERS: Final = frozenset(
    {"rate", "ping_interval", "pong_timeout", "reconnect_grace", "duplicate_rate", "swap_rate", "fault_rate"}
)
_INTS: Final = frozenset({"slow_kill"})


@dataclass
class Stats:
    """What happened, in order; every entry has ``time`` (Unix seconds)."""

    opens: list[dict[str, Any]] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)
    joins: list[dict[str, Any]] = field(default_factory=list)
    parts: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    closes: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    bad_lines: list[dict[str, Any]] = field(default_factory=list)


def stats(sim: TwitchSimulator) -> dict[str, Any]:
    s = sim.stats
    channels = {
        name: {
            "room_id": ch.room_id,
            "suspended": ch.suspended,
            "members": len(ch.members),
            "ids": ch.ids,
            "copies": [{"id": i, "source_id": src} for i, src in ch.copies],
            "unheard": ch.unheard,
            "chatters": len(ch.chatters),
            "membership_lines": ch.membership_lines,
        }
        for name, ch in sim.channels.items()
    }
    return {
        "ws_url": sim.ws_url,
        "irc_port": sim.irc_port,
        "irc_tls_port": sim.irc_tls_port,
        "tls_cert": str(sim.tls_cert) if sim.tls_cert else None,
        "generated": sum(len(ch.ids) + len(ch.copies) for ch in sim.channels.values()),
        "connections": [c.info() for c in sorted(sim.connections, key=lambda c: c.id)],
        "accounts": {
            login: {"channels": sorted(a.channels), "verified": login in sim.config.verified}
            for login, a in sim.accounts.items()
        },
        **{f.name: getattr(s, f.name) for f in dataclasses.fields(s)},
        "channels": channels,
    }


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = msgspec.json.decode(await request.read())
    except msgspec.DecodeError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


def add_routes(app: web.Application, sim: TwitchSimulator) -> None:
    async def get_stats(_: web.Request) -> web.Response:
        return _json(stats(sim))

    async def post_fault(request: web.Request) -> web.Response:
        body = await _body(request)
        kind = body.get("kind")
        if kind not in FAULT_KINDS:
            return _json({"error": f"kind must be one of {', '.join(FAULT_KINDS)}"}, 400)
        seconds = float(body.get("seconds", 5.0))
        if kind == "login_failure":
            key = body.get("account")
            sim.faults.login_failures[key] = sim.faults.login_failures.get(key, 0) + int(body.get("count", 1))
            return _json({"applied": 1})
        if kind == "server_change":
            name = normalize_channel(str(body.get("channel", "")))
            if name not in sim.channels:
                return _json({"error": f"no channel {name!r}"}, 400)
            how = str(body.get("how", "reconnect"))
            if how not in ("reconnect", "notice"):
                return _json({"error": "how must be reconnect or notice"}, 400)
            server = body.get("server")
            applied = sim.faults.server_change(name, how, str(server) if server else None)
            return _json({"applied": applied})
        if kind == "raid":
            name = normalize_channel(str(body.get("channel", "")))
            if name not in sim.channels:
                return _json({"error": f"no channel {name!r}"}, 400)
            lines, over = int(body.get("lines", 1000)), float(body.get("seconds", 1.0))
            return _json({"applied": sim.faults.raid(name, lines, over)})
        targets = [
            c
            for c in sim.connections
            if c.login is not None
            and ("connection" not in body or c.id == body["connection"])
            and ("account" not in body or c.login == body["account"])
            and ("channel" not in body or normalize_channel(str(body["channel"])) in c.channels)
        ]
        for conn in targets:
            sim.faults.apply(kind, conn, seconds=seconds, lines=int(body.get("lines", 0)))
        return _json({"applied": len(targets), "connections": [c.id for c in targets]})

    async def post_config(request: web.Request) -> web.Response:
        body = await _body(request)
        changes: dict[str, Any] = {}
        for key, value in body.items():
            ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
            if key in _INTS:
                ok = ok and isinstance(value, int)
            elif key not in _NUMBERS:
                return _json({"error": f"{key} cannot be set at run time"}, 400)
            if not ok:
                return _json({"error": f"{key} must be a non-negative number"}, 400)
            changes[key] = value
        try:
            sim.config = dataclasses.replace(sim.config, **changes)
        except (ConfigError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)
        return _json({k: getattr(sim.config, k) for k in sorted(_NUMBERS | _INTS)})

    async def post_channels(request: web.Request) -> web.Response:
        body = await _body(request)
        names = {
            k: [normalize_channel(str(n)) for n in body.get(k, [])] for k in ("add", "suspend", "unsuspend")
        }
        added = sim.add_channels(names["add"])
        for name in names["suspend"] + names["unsuspend"]:
            if name not in sim.channels:
                return _json({"error": f"no channel {name!r}"}, 400)
        for name in names["suspend"]:
            sim.channels[name].suspended = True
            for conn in list(sim.channels[name].members):
                sim.leave(conn, name)
        for name in names["unsuspend"]:
            sim.channels[name].suspended = False
        return _json({"added": added, "channels": len(sim.channels)})

    app.router.add_get("/_sim/stats", get_stats)
    app.router.add_post("/_sim/fault", post_fault)
    app.router.add_post("/_sim/config", post_config)
    app.router.add_post("/_sim/channels", post_channels)
