"""One reading connection of Twitch chat: logged in, its channels joined under the JOIN budget,
alive, and replaced make-before-break when Twitch asks it to reconnect.

The socket, its login under the login budget, liveness, backoff and the events are
:mod:`.link`'s. This module adds the channels. A joiner task per socket joins every wanted
channel it is not in, in lines of up to :data:`JOIN_BATCH`. Each batch is taken from the account's
JOIN budget (shared by every connection of the account, in every worker), so the first joins, a
rejoin after any reconnect, and channels added at run time (:meth:`TwitchReader.set_channels`)
never come as a burst. A reader with no channels opens no socket until it gets some.

A channel Twitch will not let us read (``msg_channel_suspended``, a ban) is kept in ``failed``
with the reason. It is not rejoined in a loop: it is retried under the budget once per
:data:`FAILED_RETRY_S`. A channel Twitch parts twice within :data:`PART_REPEAT_S` is failed the
same way. Any other PART we did not ask for is answered with a rejoin.

On RECONNECT the reader opens the replacement, logs in, and joins every channel (under the
budgets). Only once those joins are confirmed (or :data:`JOIN_CONFIRM_S` passed) does it close the
old socket. ``RECONNECT #chan`` (the simulator's server change: that channel alone moves, and the
server parts it from us after a grace) moves that channel alone, the same way. A side socket logs
in and joins the channel. Once the main socket has the channel again after the server's PART, or
after :data:`MOVE_HOLD_S`, the side socket goes. Both sockets deliver meanwhile, and a message is
handed on once, by its ``id`` tag.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from typing import Any, Final

from shardrunner.clock import Clock, wait_with_timeout
from shardrunner.gateway.connection import CommandRejected, ConnState, Sink
from shardrunner.gateway.transport import Transport, TransportError
from shardrunner.gateway.twitch.link import LOGIN_BUDGET, Socket, TwitchLink
from shardrunner.gateway.twitch.session import LoginFailed, Outcome
from shardrunner.identify.budget import Budgets
from shardrunner.identify.budget import UseTicket as Ticket
from shardrunner.protocol import irc, lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from shardrunner.protocol.twitch import normalize_channel

__all__ = ["JOIN_BUDGET", "Budgets", "Ticket", "TwitchReader"]

#: Seconds between two measures of the channels' traffic.
RATE_EVERY_S: Final = 10.0

log = logging.getLogger("shardrunner.twitch")

JOIN_BUDGET: Final = "twitch.join"
JOIN_BATCH: Final = 10
#: How long a replacement's joins may take to be confirmed before the old socket goes anyway.
JOIN_CONFIRM_S: Final = 30.0
#: Why a channel whose JOIN got no answer failed.
NO_ANSWER: Final = "no answer to JOIN (no such channel?)"
#: A failed channel is tried again after this long (read at run time: tests shorten it).
FAILED_RETRY_S = 3600.0
#: Two PARTs of one channel by Twitch within this long fail the channel (no rejoin loop).
PART_REPEAT_S: Final = 60.0
#: The longest a side socket carries a moving channel.
MOVE_HOLD_S: Final = 30.0


async def _either(*events: asyncio.Event, timeout: float, clock: Clock) -> None:
    """Return when one of ``events`` is set, or after ``timeout`` (inf: no timeout)."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        if math.isinf(timeout):
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        else:
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(clock, asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED),
                                        timeout)  # fmt: skip
    finally:
        for w in waits:
            w.cancel()


class TwitchReader(TwitchLink):
    """One reading connection (a :class:`~shardrunner.gateway.connection.GatewayConnection`)."""

    def __init__(
        self,
        conn: ConnKey,
        *,
        login: str,
        token: str | None,
        channels: list[str],
        url: str,
        sink: Sink,
        budgets: Budgets,
        login_budget: str = LOGIN_BUDGET,
        join_budget: str = JOIN_BUDGET,
        backup: bool = False,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            conn, login=login, token=token, url=url, sink=sink, budgets=budgets,
            login_budget=login_budget, transport=transport, clock=clock,
        )  # fmt: skip
        self.join_budget = join_budget
        self.backup = backup
        self.wanted: list[str] = []
        self._wanted: set[str] = set()
        self.failed: dict[str, str] = {}
        self._failed_at: dict[str, float] = {}
        self._parted_at: dict[str, float] = {}
        #: channel -> set once the main socket has it again (a move in progress).
        self._moves: dict[str, asyncio.Event] = {}
        self._has_channels = asyncio.Event()
        #: A logged-in socket serves: the state follows the joins (ready once all are confirmed).
        self._serving = False
        #: When the traffic was last measured, and each channel's smoothed lines per second.
        self._rated_at: float | None = None
        self._rates: dict[str, float] = {}
        self._set_wanted(channels)

    def __repr__(self) -> str:  # never the token
        return f"TwitchReader({self.conn}, {self.login}, {len(self.wanted)} channels)"

    def _set_wanted(self, channels: list[str]) -> None:
        names = [normalize_channel(c) for c in channels]
        self.wanted = list(dict.fromkeys(n for n in names if n))
        self._wanted = set(self.wanted)
        if self.wanted:
            self._has_channels.set()

    # -- channels ---------------------------------------------------------------------------------
    def set_channels(self, channels: list[str]) -> None:
        """Read these channels from now on: join the new ones (under the JOIN budget), part the
        removed ones. Synchronous: the joiners do the joining."""
        before = self._wanted
        self._set_wanted(channels)
        removed = [c for c in before if c not in self._wanted]
        for c in removed:
            self.failed.pop(c, None)
            self._failed_at.pop(c, None)
        for sock in list(self._sockets):
            s = sock.session
            gone = [c for c in removed if c in s.channels or c in s.joining]
            if sock.alive:
                for i in range(0, len(gone), JOIN_BATCH):
                    sock.write(s.part(gone[i : i + JOIN_BATCH]))
            sock.wake.set()
        self._count()

    def _to_join(self, sock: Socket, now: float) -> tuple[list[str], float]:
        """The channels ``sock`` should join now, and how long until a failed one is due again."""
        s = sock.session
        chans = [sock.scope] if sock.scope is not None else self.wanted
        todo, retry = [], math.inf
        for c in chans:
            if c in s.channels or c in s.joining or c not in self._wanted:
                continue
            if c in self.failed:
                due = self._failed_at.get(c, now) + FAILED_RETRY_S
                if now < due:
                    retry = min(retry, due - now)
                    continue
            todo.append(c)
        return todo, retry

    def _unanswered(self, sock: Socket, now: float) -> float:
        """Fail the channels whose JOIN Twitch left unanswered for JOIN_CONFIRM_S (it answers
        nothing for a channel that does not exist): they are tried again hourly, and no longer
        count as joining. Returns the seconds until the next such deadline."""
        asked, s = sock.asked, sock.session
        for c in [c for c, at in asked.items() if c not in s.joining]:
            del asked[c]
        late = [c for c, at in asked.items() if now - at >= JOIN_CONFIRM_S]
        for c in late:
            del asked[c]
            s.joining.discard(c)
            self._fail(c, NO_ANSWER, now)
            log.warning(
                "%s: #%s: no answer to JOIN within %.0f s (no such channel?)", self.conn, c, JOIN_CONFIRM_S
            )
        if late:
            self._count()
            self._check_settled(sock)
        return min((at + JOIN_CONFIRM_S - now for at in asked.values()), default=math.inf)

    async def _joiner(self, sock: Socket) -> None:
        """Keep ``sock`` in its channels: join what is missing, each batch under the JOIN budget."""
        while sock.alive:
            now = self.clock.monotonic()
            confirm = self._unanswered(sock, now)
            todo, retry = self._to_join(sock, now)
            if not todo:
                sock.wake.clear()
                await _either(sock.wake, timeout=min(retry, confirm), clock=self.clock)
                continue
            ticket = await self.budgets.acquire(self.join_budget, self.login, min(len(todo), JOIN_BATCH))
            now = self.clock.monotonic()
            still = set(self._to_join(sock, now)[0])
            batch = [c for c in todo[:JOIN_BATCH] if c in still]
            if not sock.alive or not batch:
                ticket.cancel()
                continue
            sock.write(sock.session.join(batch))
            ticket.used()  # the window counts from the write
            sock.asked.update(dict.fromkeys(batch, now))
            for c in batch:
                if c in self.failed:
                    self._failed_at[c] = now  # retried: the next try is FAILED_RETRY_S on
            self._count()

    def _fail(self, channel: str, why: str, now: float) -> None:
        """``channel`` cannot be read (tried again later); said once until it is joined."""
        if channel not in self.failed:
            self.notify(Notice(lifecycle.CHANNEL_FAILED, self.conn, {"channel": channel, "reason": why}))
        self.failed[channel] = why
        self._failed_at[channel] = now

    def _count(self) -> None:
        joined: set[str] = set()
        for sock in self._sockets:
            joined |= sock.session.channels
        if joined != self.counters.keys:
            # Joined on the connection (on any of its sockets): a socket's replacement that joins
            # what the old one had is no news, a rejoin after a loss is.
            for channel in sorted(joined - self.counters.keys):
                self.notify(Notice(lifecycle.CHANNEL_JOINED, self.conn, {"channel": channel}))
            self.counters.set_keys(joined)
        self.counters.keys_pending = sum(1 for c in self.wanted if c not in joined and c not in self.failed)
        if self._serving and self.state in (ConnState.READY, ConnState.IDENTIFYING):
            # Ready once every channel is joined (or failed): a reload waits for that.
            self.state = ConnState.IDENTIFYING if self.counters.keys_pending else ConnState.READY
            if self.state is ConnState.READY:
                self._became_ready()

    def _lost(self, sock: Socket) -> None:
        # Its channels no longer count as joined (status, readiness).
        self._count()

    def _check_settled(self, sock: Socket) -> None:
        chans = [sock.scope] if sock.scope is not None else self.wanted
        if all(c in sock.session.channels or c in self.failed for c in chans):
            sock.settled.set()

    # -- the life of the connection ---------------------------------------------------------------
    async def _needed(self) -> bool:
        while not self._stop.is_set() and not self.wanted:
            self.state = ConnState.READY  # a spare: nothing to read, so nothing to wait for
            self._has_channels.clear()
            await _either(self._stop, self._has_channels, timeout=math.inf, clock=self.clock)
        return not self._stop.is_set()

    async def _connected(self) -> None:
        sock = await self._open()
        sock.spawn(self._joiner(sock))
        self._socket, self.session_id = sock, sock.id  # before _count: its ready notice names it
        self._serving = True
        self.state = ConnState.IDENTIFYING
        self._count()
        try:
            await self._serve(sock)
        finally:
            self._serving = False

    async def _replace(self, old: Socket) -> Socket:
        """Make the replacement, join its channels, then break the old socket."""
        try:
            new = await self._open(replacing=True)
        except (TransportError, TimeoutError) as exc:
            log.warning("%s: the replacement failed (%s); keeping the old socket", self.conn, exc)
            return old
        new.spawn(self._joiner(new))
        self._check_settled(new)
        # Joined means confirmed (ROOMSTATE), not asked: only then may the old socket go. A close
        # meanwhile ends the wait (it would have waited for joins nobody needs).
        await _either(new.settled, self._stop, timeout=JOIN_CONFIRM_S, clock=self.clock)
        if not new.settled.is_set() and not self._stop.is_set():
            log.warning("%s: not every join of the replacement was confirmed; switching anyway", self.conn)
        self._discard(old)
        self.counters.reconnects += 1
        self._count()
        return new

    def _on_reconnect(self, sock: Socket, channel: str | None) -> None:
        if channel is None:
            self._reconnect.set()
        elif channel in self._wanted and channel not in self._moves:
            self._moves[channel] = asyncio.Event()
            sock.spawn(self._move(channel))

    async def _move(self, channel: str) -> None:
        """Carry ``channel`` on a side socket while the server moves it (see the module)."""
        log.info("%s: Twitch moves #%s; joining it on a side socket first", self.conn, channel)
        regained = self._moves[channel]
        side: Socket | None = None
        try:
            side = await self._open(replacing=True)
            side.scope = channel
            side.spawn(self._joiner(side))
            await wait_with_timeout(self.clock, side.settled.wait(), JOIN_CONFIRM_S)
            await wait_with_timeout(self.clock, regained.wait(), MOVE_HOLD_S)
        except (TransportError, TimeoutError, LoginFailed) as exc:
            log.warning("%s: the move of #%s ended early (%s)", self.conn, channel, exc or "timeout")
        finally:
            self._moves.pop(channel, None)
            if side is not None:
                self._discard(side)
            self._count()

    # -- reading ----------------------------------------------------------------------------------
    def _outcome(self, sock: Socket, message: irc.Message, outcome: Outcome) -> None:
        if not (outcome.joined or outcome.failed or outcome.parted):
            return
        now = self.clock.monotonic()
        for channel, why in outcome.failed:
            self._fail(channel, why, now)
            log.warning("%s: #%s cannot be read (%s)", self.conn, channel, why)
            sock.wake.set()  # the joiner times its retry
        for channel in outcome.joined:
            self.failed.pop(channel, None)
            self._failed_at.pop(channel, None)
            if sock is self._socket and channel in self._moves:
                self._moves[channel].set()
        for channel in outcome.parted:
            if channel not in self._wanted:
                continue  # we asked
            if channel in self._moves:
                sock.wake.set()  # the server moved it: rejoin, the side socket covers the gap
                continue
            last, self._parted_at[channel] = self._parted_at.get(channel), now
            if last is not None and now - last < PART_REPEAT_S:
                self._fail(channel, "parted by Twitch twice within a minute", now)
                log.warning("%s: Twitch keeps parting #%s; retrying it later", self.conn, channel)
            sock.wake.set()
        self._count()
        self._check_settled(sock)

    # -- status and the GatewayConnection protocol --------------------------------------------------
    def rates(self) -> dict[str, float]:
        """Chat lines per second of its busy channels (0.5 or more), smoothed over the last
        minutes: what placement uses at the next start to give busy channels fewer neighbours."""
        now = self.clock.monotonic()
        since = self._rated_at
        if since is None:
            self._rated_at = now
            return {}
        elapsed = now - since
        if elapsed >= RATE_EVERY_S:
            old = self._rates
            new = {ch[1:] if ch.startswith("#") else ch: n / elapsed for ch, n in self.lines.items()}
            merged = {ch: 0.5 * old.get(ch, 0.0) + 0.5 * new.get(ch, 0.0) for ch in old.keys() | new.keys()}
            self._rates = {ch: r for ch, r in merged.items() if r >= 0.05}
            self.lines.clear()
            self._rated_at = now
        return {ch: round(r, 1) for ch, r in self._rates.items() if r >= 0.5}

    def describe(self) -> dict[str, Any]:
        """What ``status`` shows of this connection (no token)."""
        joined = self.counters.keys
        return {
            "rates": self.rates(),
            "role": "read",
            "login": self.login,
            "channels": len(self.wanted),
            "joined": len(joined),
            "joining": self.counters.keys_pending,
            "failed": dict(self.failed),
            "backup": self.backup,
        }

    async def send_command(self, body: Any, *, timeout: float = 30.0) -> None:
        raise CommandRejected(
            "a reading connection does not send: sends go to the account's sending connection"
        )
