"""Fault injection: what ``POST /_sim/fault`` and ``--fault-rate`` do to a connection.

A fault is one of :data:`~shardrunner.sim.discord.config.FAULT_KINDS`. Random faults are drawn per
connection from a seeded generator: the waits are exponential (``fault_rate`` per minute), the kinds
uniform over ``faults``.
"""

from __future__ import annotations

import math
import random
import time
from typing import TYPE_CHECKING, Any, Final

import msgspec

from shardrunner.sim.discord.config import SimConfig

if TYPE_CHECKING:
    from shardrunner.sim.discord.gateway import Connection

#: Codes a random "close" fault draws from: the resumable ones and the two that need a new session.
_RANDOM_CLOSE_CODES: Final = (4000, 4001, 4002, 4003, 4005, 4007, 4008, 4009)


class FaultSpec(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /_sim/fault``: what to inject, and which connections (all, if no filter)."""

    kind: str
    shard: int | None = None
    num_shards: int | None = None
    session_id: str | None = None
    #: invalid_session: the ``d`` of op 9.
    resumable: bool = True
    #: close: the close code and reason.
    code: int = 4000
    reason: str | None = None
    #: zombie and stall: seconds (zombie: until the connection ends when absent).
    duration: float | None = msgspec.field(default=None)

    def __post_init__(self) -> None:
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be positive")


class Faults:
    """Applies faults, and keeps when each connection's next random fault is due."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        #: connection -> time.monotonic() of its next random fault.
        self.due: dict[Connection, float] = {}
        self.rng = random.Random(config.seed ^ 0xFA17)

    def schedule_random(self, conn: Connection) -> None:
        rate = self.config.fault_rate
        if rate > 0 and self.config.faults:
            self.due[conn] = time.monotonic() + self.rng.expovariate(rate / 60.0)

    def forget(self, conn: Connection) -> None:
        self.due.pop(conn, None)

    async def inject_random(self, conn: Connection) -> None:
        rng = self.rng
        kind = rng.choice(self.config.faults)
        spec: dict[str, Any] = {"kind": kind}
        if kind == "invalid_session":
            spec["resumable"] = rng.random() < 0.5
        elif kind == "close":
            spec["code"] = rng.choice(_RANDOM_CLOSE_CODES)
        await self.apply(conn, spec, source="random")
        if not conn.closing and conn.session is not None:  # op 9 leaves none: attach reschedules
            self.schedule_random(conn)

    async def apply(self, conn: Connection, spec: dict[str, Any], source: str) -> None:
        kind = spec["kind"]
        conn.sim.recorder.add("faults", **{**spec, **conn.describe(), "source": source})
        interval = self.config.heartbeat_interval_ms / 1000
        if kind == "reconnect":
            conn.send_control(b'{"t":null,"s":null,"op":7,"d":null}')
        elif kind == "invalid_session":
            conn.invalid_session(resumable=bool(spec.get("resumable", True)), why="injected")
        elif kind == "drop":
            conn.drop()
        elif kind == "close":
            await conn.close(int(spec.get("code", 4000)), spec.get("reason"))
        elif kind == "zombie":
            conn.zombie_until = time.monotonic() + float(spec.get("duration") or math.inf)
        elif kind == "stall":
            conn.stalled_until = time.monotonic() + float(spec.get("duration") or min(60.0, 2 * interval))
        elif kind == "garbage":
            # Bytes that are no valid payload in any compression: the client's stream is now broken.
            conn.send_garbage(bytes(self.rng.randrange(256) for _ in range(64)))
