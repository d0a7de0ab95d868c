"""Faults of the Twitch chat simulator, from ``--fault-rate``/``--faults`` and ``POST /_sim/fault``.

- ``reconnect``: ``:tmi.twitch.tv RECONNECT``, then a close after ``--reconnect-grace`` seconds;
- ``drop``: the TCP connection is aborted (no close frame, no RECONNECT);
- ``stall``: nothing is sent for ``seconds`` (lines queue up; then they all go);
- ``no_pong``: the client's PINGs get no PONG for ``seconds``;
- ``server_change`` (a channel): every connection in it gets ``:tmi.twitch.tv RECONNECT #chan``, or
  with ``how="notice"`` a ``@msg-id=server_change NOTICE #chan :This channel is moving to SERVER``
  naming another server (the seed's SERVERCHANGE idea; SERVER is the URL given, by default this
  simulator's own WebSocket URL, and always the last word of the text), and, after the grace, a
  PART of that channel (the channel moved; joining it again works at once). As a random fault it
  picks one channel of the connection;
- ``login_failure``: the next ``count`` logins (of ``account``, or of anyone) fail;
- ``slow_kill``: the connection is killed (no close) once more than ``lines`` lines are queued
  unread (``lines`` 0: at once);
- ``raid`` (a channel): a raid's ``USERNOTICE`` (``msg-id=raid``) and then a burst of ``lines``
  generated chat lines (1000 by default) in that channel over ``seconds`` (1 by default; 0: at
  once), to every connection in it, beside the usual traffic.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING, Any

from shardrunner.protocol.twitch import SERVER
from shardrunner.sim.twitch.wire import line

#: The msg-id of the NOTICE that names the server a channel moves to.
SERVER_CHANGE = "server_change"

if TYPE_CHECKING:
    from shardrunner.sim.twitch.connection import Connection
    from shardrunner.sim.twitch.server import TwitchSimulator
    from shardrunner.sim.twitch.traffic import Channel


class Faults:
    def __init__(self, sim: TwitchSimulator) -> None:
        self.sim = sim
        self.rng = random.Random(sim.config.seed + 7)
        #: account (or None: anyone) -> logins still to fail.
        self.login_failures: dict[str | None, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def take_login_failure(self, login: str) -> bool:
        for key in (login, None):
            left = self.login_failures.get(key, 0)
            if left > 0:
                self.login_failures[key] = left - 1
                return True
        return False

    def _later(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def apply(self, kind: str, conn: Connection, seconds: float = 5.0, lines: int = 0) -> None:
        """One fault on one connection."""
        self.sim.record("faults", conn, kind=kind)
        if kind == "reconnect":
            conn.send(line("RECONNECT", [], prefix=SERVER))
            self._later(conn.close("reconnect", after=self.sim.config.reconnect_grace))
        elif kind == "drop":
            conn.drop("drop fault")
        elif kind == "stall":
            conn.stalled_until = time.monotonic() + seconds
        elif kind == "no_pong":
            conn.no_pong_until = time.monotonic() + seconds
        elif kind == "slow_kill":
            conn.slow_kill = lines
            if lines == 0:
                conn.drop("slow consumer")

    def server_change(self, channel: str, how: str = "reconnect", server: str | None = None) -> int:
        """RECONNECT #chan (or a NOTICE naming another server) to every connection in ``channel``,
        then a PART of it after the grace."""
        ch = self.sim.channels[channel]
        conns = list(ch.members)
        if how == "notice":
            target = server or self.sim.ws_url
            told = line(
                "NOTICE",
                [ch.irc_name, f"This channel is moving to {target}"],
                tags={"msg-id": SERVER_CHANGE},
                prefix=SERVER,
            )
        else:
            told = line("RECONNECT", [ch.irc_name], prefix=SERVER)
        for conn in conns:
            self.sim.record("faults", conn, kind="server_change", channel=channel, how=how)
            conn.send(told)
        self._later(self._move(channel, conns))
        return len(conns)

    def raid(self, channel: str, lines: int, seconds: float = 1.0) -> int:
        """A raid on ``channel``: its USERNOTICE, then ``lines`` chat lines spread over ``seconds``
        (0: all at once); returns the connections in it (each line's id is kept in the channel's
        ``ids``, as generated ones are)."""
        sim = self.sim
        ch = sim.channels[channel]
        for conn in list(ch.members):
            sim.record("faults", conn, kind="raid", channel=channel, lines=lines)
        notice, ident = sim.traffic.raid(ch)
        sim.deliver(ch, notice, ident, None, time.monotonic(), False)
        self._later(self._burst(ch, lines, seconds))
        return len(ch.members)

    async def _burst(self, ch: Channel, lines: int, seconds: float) -> None:
        sim = self.sim
        started = time.monotonic()
        sent = 0
        while sent < lines:
            now = time.monotonic()
            due = lines if seconds <= 0 else min(lines, int(lines * (now - started) / seconds) + 1)
            for _ in range(due - sent):
                for target, data, ident, source in sim.traffic.lines(ch):
                    sim.deliver(target, data, ident, source, now, False)
            sent = due
            await asyncio.sleep(0.01)

    async def _move(self, channel: str, conns: list[Connection]) -> None:
        await asyncio.sleep(self.sim.config.reconnect_grace)
        for conn in conns:
            if channel in conn.channels and not conn.closed:
                user = conn.user
                conn.reply("PART", ["#" + channel], prefix=f"{user}!{user}@{user}.tmi.twitch.tv")
                self.sim.leave(conn, channel)

    def tick(self, dt: float) -> None:
        """Random faults: ``--fault-rate`` per connection per minute, of ``--faults`` kinds."""
        cfg = self.sim.config
        if cfg.fault_rate <= 0 or not cfg.faults:
            return
        p = cfg.fault_rate * dt / 60.0
        for conn in list(self.sim.connections):
            if conn.login is not None and self.rng.random() < p:
                kind = self.rng.choice(cfg.faults)
                if kind == "server_change":
                    if conn.channels:
                        self.server_change(self.rng.choice(sorted(conn.channels)))
                else:
                    self.apply(kind, conn)
