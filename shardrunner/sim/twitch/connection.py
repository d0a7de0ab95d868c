"""One client connection of the Twitch chat simulator, whatever carries it (WebSocket or TCP).

A :class:`Transport` writes batches of lines (one WebSocket frame, or one TCP write) and closes or
aborts. :class:`Connection` keeps the state of the IRC session: capabilities, login, channels, the
outbound queue and its writer task, keepalive and the faults that act on one connection. What a
command does is in :mod:`.commands`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from typing import TYPE_CHECKING, Protocol

from shardrunner.protocol.twitch import CAP_COMMANDS, CAP_MEMBERSHIP, CAP_TAGS, SERVER
from shardrunner.sim.twitch.wire import command_of, line, strip_tags

if TYPE_CHECKING:
    from shardrunner.sim.twitch.limits import Account
    from shardrunner.sim.twitch.server import TwitchSimulator
    from shardrunner.sim.twitch.traffic import Channel

_ids = itertools.count(1)
#: Commands that need the commands cap (without it they are not sent).
_COMMANDS_CAP = frozenset(
    (b"USERNOTICE", b"CLEARCHAT", b"CLEARMSG", b"ROOMSTATE", b"USERSTATE", b"GLOBALUSERSTATE", b"HOSTTARGET")
)


class Transport(Protocol):
    kind: str
    peer: str

    async def write(self, data: bytes) -> None: ...
    async def close(self) -> None: ...
    def abort(self) -> None: ...


class Connection:
    """The IRC session of one client connection."""

    def __init__(self, sim: TwitchSimulator, transport: Transport) -> None:
        self.sim = sim
        self.transport = transport
        self.id = next(_ids)
        self.caps: set[str] = set()
        self.password: str | None = None
        self.login: str | None = None
        self.account: Account | None = None
        self.anonymous = False
        self.channels: dict[str, Channel] = {}
        self.opened = time.monotonic()
        self.closed = False
        self._queue: deque[bytes] = deque()
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self.next_ping = self.opened + sim.config.ping_interval
        self.pong_deadline: float | None = None
        #: When the oldest unanswered PING went out; PONGs answered; the longest wait for one (s).
        self.ping_sent_at: float | None = None
        self.pongs = 0
        self.pong_max = 0.0
        self.stalled_until = 0.0
        self.no_pong_until = 0.0
        self.slow_kill: int | None = None
        self._closing: str | None = None
        self.lines_in = 0
        self.lines_out = 0

    # -- description --------------------------------------------------------------------------
    @property
    def user(self) -> str:
        """The name in numerics: the login, or ``*`` before it."""
        return self.login or "*"

    def describe(self) -> dict[str, object]:
        return {"connection": self.id, "account": self.login, "transport": self.transport.kind}

    def info(self) -> dict[str, object]:
        return {
            **self.describe(),
            "peer": self.transport.peer,
            "anonymous": self.anonymous,
            "caps": sorted(self.caps),
            "channels": sorted(self.channels),
            "queued": len(self._queue),
            "lines_in": self.lines_in,
            "lines_out": self.lines_out,
            "pongs": self.pongs,
            "pong_max": round(self.pong_max, 4),
            "age": round(time.monotonic() - self.opened, 3),
        }

    # -- outbound -----------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop())

    def send(self, line: bytes) -> None:
        """Queue one formatted line (with CRLF), adapted to the connection's caps."""
        if self.closed:
            return
        caps = self.caps
        if CAP_COMMANDS not in caps and command_of(line) in _COMMANDS_CAP:
            return
        if CAP_TAGS not in caps and line.startswith(b"@"):
            line = strip_tags(line)
        self._queue.append(line)
        self._wake.set()
        limit = self.slow_kill if self.slow_kill is not None else self.sim.config.slow_kill
        if limit and len(self._queue) > limit and time.monotonic() >= self.stalled_until:
            self.sim.violation("slow_consumer", self, queued=len(self._queue))
            self.drop("slow consumer")

    def reply(
        self, command: str, params: list[str], prefix: str = SERVER, tags: dict[str, str] | None = None
    ) -> None:
        self.send(line(command, params, tags, prefix))

    def notice(self, target: str, text: str, msg_id: str | None = None) -> None:
        self.reply("NOTICE", [target, text], tags={"msg-id": msg_id} if msg_id else None)

    def membership(self) -> bool:
        return CAP_MEMBERSHIP in self.caps

    async def _write_loop(self) -> None:
        queue = self._queue
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while queue and not self.closed:
                    wait = self.stalled_until - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                        continue
                    batch = b"".join(queue)
                    n = len(queue)
                    queue.clear()
                    self.lines_out += n
                    await self.transport.write(batch)
                if self._closing is not None and not self.closed:
                    self._end("server", self._closing)
                    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
                        await self.transport.close()
        except (ConnectionError, RuntimeError, OSError):
            self.gone("write failed")

    # -- ending -------------------------------------------------------------------------------
    async def close(self, reason: str, after: float = 0.0) -> None:
        """Close cleanly once the queued lines are written, ``after`` seconds from now."""
        if after > 0:
            await asyncio.sleep(after)
        if self.closed or self._closing is not None:
            return
        self._closing = reason
        self._wake.set()

    def drop(self, reason: str) -> None:
        """End the connection without a close (TCP abort)."""
        if self.closed:
            return
        self._end("server", reason, dropped=True)
        self.transport.abort()

    def gone(self, reason: str = "closed by client") -> None:
        """The client went away (or the transport failed)."""
        if not self.closed:
            self._end("client", reason)

    def _end(self, by: str, reason: str, dropped: bool = False) -> None:
        self.closed = True
        self._wake.set()
        self.sim.disconnected(self, by, reason, dropped)
        if self._writer is not None and self._writer is not asyncio.current_task():
            self._writer.cancel()
