"""The sending connection of one Twitch account: chat messages written under the account's message
limits, each answered to its caller when Twitch confirmed it, or with the reason it was not sent.

A send is checked at once. It is refused at once (:class:`CommandRejected`, the reason first) when
its channel is not a channel name (``bad_channel``), its text is empty or holds a line break
(``bad_text``), or it is over 500 characters (``too_long``: refused, never cut). It is also
refused when it would break the duplicate rule in a channel the account does not moderate
(``duplicate``: the same text as the channel's last message within 30 s; with
``bypass_duplicates`` the text gets ``DUPLICATE_BYPASS`` instead, every other time, as the usual
workaround does), or when the queue is full (``queue_full``). Otherwise it waits in one bounded
FIFO over all channels. The pump writes the oldest message that the limits of :mod:`.pacing` let
through now. A channel waiting on its per-channel interval does not hold up the others, and each
channel keeps its order.

Twitch does not echo our own PRIVMSG. It answers each one on the socket it came by, in order per
channel: a ``USERSTATE #chan`` with the sent message's ``id`` (delivered), or a ``NOTICE #chan``
with a ``msg-id`` (refused: ``msg_ratelimit``, ``msg_duplicate``, ``msg_banned``...). So the
oldest unanswered write of that channel takes the answer. A write still unanswered when its socket
dies is answered :class:`NotReady`: it may or may not have been delivered. It is never written
again by itself, because that could double a message. Every line with a channel goes to the sink
as an event, so the bot sees the USERSTATE with the id. A USERSTATE also says whether the account
moderates the channel (``mod=1``, or a broadcaster or moderator badge), which changes its limits
from then on.

On RECONNECT the replacement is opened and logged in first, and new writes go to it. The old
socket is closed once its writes are answered, or after :data:`DRAIN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shardrunner.clock import Clock, wait_with_timeout
from shardrunner.gateway.connection import CommandRejected, ConnFatalError, ConnState, NotReady, Sink
from shardrunner.gateway.transport import Transport, TransportError
from shardrunner.gateway.twitch.link import LOGIN_BUDGET, Socket, TwitchLink
from shardrunner.gateway.twitch.pacing import MARGIN_S, Pacer, duplicate_key
from shardrunner.gateway.twitch.session import Outcome
from shardrunner.identify.budget import Budgets
from shardrunner.protocol import irc
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.twitch import (
    DUPLICATE_BYPASS,
    DUPLICATE_WINDOW_S,
    MAX_MESSAGE_CHARS,
    TwitchLimits,
    is_anonymous,
    normalize_channel,
)

log = logging.getLogger("shardrunner.twitch")

#: How long the old socket of a RECONNECT stays open for the answers to its writes.
DRAIN_S: Final = 10.0
#: An unanswered write older than this no longer waits for an answer (Twitch answers in well under
#: a second; an answer this late would be matched to the wrong write).
ANSWER_MAX_S: Final = 60.0

_CHANNEL = re.compile(r"[a-z0-9_]{1,25}")


@dataclass(slots=True, eq=False)
class _Send:
    channel: str
    text: str
    tags: dict[str, str]
    key: str
    future: asyncio.Future[dict[str, Any]]
    #: monotonic time of the write, and epoch ms (None while queued).
    written_at: float | None = None
    sent_at: int | None = None
    socket: Socket | None = field(default=None, repr=False)


def _settle(item: _Send, result: dict[str, Any] | None = None, error: Exception | None = None) -> None:
    if item.future.done():
        return  # the caller gave up
    if error is not None:
        item.future.set_exception(error)
    else:
        item.future.set_result(result or {})


class TwitchSender(TwitchLink):
    """The sending connection of one account (a GatewayConnection; see the module)."""

    channel_events_only = True

    def __init__(
        self,
        conn: ConnKey,
        *,
        login: str,
        token: str,
        url: str,
        sink: Sink,
        budgets: Budgets,
        limits: TwitchLimits,
        moderates: frozenset[str] = frozenset(),
        queue_size: int = 1000,
        bypass_duplicates: bool = False,
        login_budget: str = LOGIN_BUDGET,
        transport: Transport | None = None,
        clock: Clock | None = None,
    ) -> None:
        if is_anonymous(login.lower()):
            raise ValueError(f"{login}: an anonymous login cannot send chat messages")
        super().__init__(
            conn, login=login, token=token, url=url, sink=sink, budgets=budgets,
            login_budget=login_budget, transport=transport, clock=clock,
        )  # fmt: skip
        self.limits = limits
        self.moderates = frozenset(normalize_channel(c) for c in moderates)
        self.queue_size = queue_size
        self.bypass_duplicates = bypass_duplicates
        self.pacer = Pacer(limits)
        self.sent = 0
        self.refused: Counter[str] = Counter()
        #: Channels where Twitch told us (USERSTATE) the account moderates, beside ``moderates``.
        self._learned: set[str] = set()
        self._queue: deque[_Send] = deque()
        #: channel -> (write time, duplicate key) of its last delivered message.
        self._delivered: dict[str, tuple[float, str]] = {}
        #: The socket new writes go to (None while there is none, or a replacement is made).
        self._writable: Socket | None = None
        self._wake = asyncio.Event()

    def __repr__(self) -> str:  # never the token
        return f"TwitchSender({self.conn}, {self.login}, {len(self._queue)} queued)"

    def moderated(self, channel: str) -> bool:
        """Whether the account is moderator or broadcaster of ``channel`` (its limits differ)."""
        return channel in self._learned or channel in self.moderates or channel == self.login

    # -- sending ----------------------------------------------------------------------------------
    async def send_command(self, body: Any, *, timeout: float = 30.0) -> dict[str, Any]:
        """Send one chat message (see the module); the answer once Twitch confirmed it."""
        item = self._check(body)
        self._queue.append(item)
        self._wake.set()
        try:
            return await wait_with_timeout(self.clock, asyncio.shield(item.future), timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if not item.future.done():
                item.future.cancel()  # a late answer still takes its place in the FIFO, unheard
            if item.written_at is None:
                with contextlib.suppress(ValueError):
                    self._queue.remove(item)
                if isinstance(exc, TimeoutError):
                    raise NotReady(
                        f"the message to #{item.channel} was not sent within {timeout:g} s: it was never "
                        f"written (waiting on {'the message limits' if self._writable else 'the connection'})"
                    ) from None
            elif isinstance(exc, TimeoutError):
                raise NotReady(
                    f"the message to #{item.channel} was written but Twitch did not answer within "
                    f"{timeout:g} s: it may or may not have been delivered"
                ) from None
            raise

    def _refuse(self, reason: str, words: str) -> CommandRejected:
        self.refused[reason] += 1
        return CommandRejected(f"{reason}: {words}")

    def _check(self, body: Any) -> _Send:
        """The send of ``body``, or CommandRejected at once."""
        if not isinstance(body, Mapping):
            raise self._refuse("bad_text", "a chat message is a mapping with channel and text")
        raw_channel, text = body.get("channel"), body.get("text")
        channel = normalize_channel(raw_channel) if isinstance(raw_channel, str) else ""
        if not _CHANNEL.fullmatch(channel):
            raise self._refuse("bad_channel", f"{raw_channel!r} is not a Twitch channel name")
        if not isinstance(text, str) or not text.strip() or "\r" in text or "\n" in text or "\0" in text:
            raise self._refuse("bad_text", "the text must be a non-empty string on one line")
        if len(text) > MAX_MESSAGE_CHARS:
            raise self._refuse(
                "too_long", f"{len(text)} characters, over Twitch's {MAX_MESSAGE_CHARS} (not cut)"
            )
        tags: dict[str, str] = {}
        for name, tag in (("reply_to", "reply-parent-msg-id"), ("nonce", "client-nonce")):
            value = body.get(name)
            if value is not None:
                if not isinstance(value, str):
                    raise self._refuse("bad_text", f"{name} must be a string")
                tags[tag] = value
        key = duplicate_key(text)
        if not self.moderated(channel) and key == self._last_key(channel):
            bypassed = text + DUPLICATE_BYPASS
            if not self.bypass_duplicates or len(bypassed) > MAX_MESSAGE_CHARS:
                raise self._refuse(
                    "duplicate",
                    f"the same text as the last message to #{channel} less than "
                    f"{DUPLICATE_WINDOW_S:g} s ago: Twitch would drop it",
                )
            text, key = bypassed, duplicate_key(bypassed)
        if self.state in (ConnState.FATAL, ConnState.STOPPED) or self._stop.is_set():
            raise NotReady(f"the sending connection of {self.login} is {self.state.value}: nothing is sent")
        if len(self._queue) >= self.queue_size:
            raise self._refuse("queue_full", f"{len(self._queue)} messages wait already")
        return _Send(channel, text, tags, key, asyncio.get_running_loop().create_future())

    def _last_key(self, channel: str) -> str | None:
        """The duplicate key of the channel's last message: queued, written, or delivered lately."""
        for item in reversed(self._queue):
            if item.channel == channel:
                return item.key
        written = [i for s in self._sockets for i in s.pending.get(channel, ())]
        if written:
            latest: _Send = max(written, key=lambda i: i.written_at or 0.0)
            return latest.key
        last = self._delivered.get(channel)
        if last is not None and self.clock.monotonic() - last[0] < DUPLICATE_WINDOW_S + MARGIN_S:
            return last[1]
        return None

    def _next(self, now: float) -> tuple[_Send | None, float]:
        """The oldest message the limits let through now, or how long until one may go."""
        blocked: set[str] = set()
        soonest = math.inf
        for item in self._queue:
            if item.channel in blocked:
                continue  # each channel keeps its order
            wait = self.pacer.wait(item.channel, self.moderated(item.channel), now)
            if wait <= 0:
                return item, 0.0
            blocked.add(item.channel)
            soonest = min(soonest, wait)
        return None, soonest

    async def _pump(self, sock: Socket) -> None:
        """Write queued messages on ``sock`` as the limits allow."""
        while sock.alive and self._writable is sock:
            item, wait = self._next(self.clock.monotonic())
            if item is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    if math.isinf(wait):
                        await self._wake.wait()
                    else:
                        await wait_with_timeout(self.clock, self._wake.wait(), wait)
                continue
            self._write(sock, item)

    def _write(self, sock: Socket, item: _Send) -> None:
        now = self.clock.monotonic()
        line = irc.format("PRIVMSG", ["#" + item.channel, item.text], tags=item.tags or None, trailing=True)
        self._queue.remove(item)
        sock.write(line)
        self.pacer.record(item.channel, self.moderated(item.channel), now)
        item.written_at, item.sent_at, item.socket = now, int(time.time() * 1000), sock
        pending = sock.pending.setdefault(item.channel, deque())
        while pending and now - (pending[0].written_at or now) > ANSWER_MAX_S:
            _settle(
                pending.popleft(), error=NotReady("Twitch never answered: it may or may not have been sent")
            )
        pending.append(item)
        self.counters.add_key(item.channel)

    # -- answers ----------------------------------------------------------------------------------
    def _outcome(self, sock: Socket, message: irc.Message, outcome: Outcome) -> None:
        command = message.command
        if command not in ("USERSTATE", "NOTICE") or message.channel is None:
            return
        channel = message.channel[1:]
        tags = message.tags
        if command == "USERSTATE":
            self._learn(channel, tags)
            if "id" not in tags:
                return
        elif "msg-id" not in tags:
            return
        pending = sock.pending.get(channel)
        if not pending:
            return
        item = pending.popleft()
        if not pending:
            del sock.pending[channel]
        if command == "USERSTATE":
            self.sent += 1
            self._delivered[channel] = (item.written_at or 0.0, item.key)
            _settle(item, {"id": tags["id"], "channel": channel, "sent_at": item.sent_at})
        else:
            reason = tags["msg-id"]
            if reason == "msg_ratelimit":
                log.warning("%s: Twitch refused a message to #%s as too quick", self.conn, channel)
            self.refused[reason] += 1
            _settle(item, error=CommandRejected(f"{reason}: {message.trailing or 'Twitch refused it'}"))
        sock.wake.set()

    def _learn(self, channel: str, tags: dict[str, str]) -> None:
        badges = tags.get("badges", "")
        moderator = tags.get("mod") == "1" or any(
            b.startswith(("broadcaster/", "moderator/")) for b in badges.split(",")
        )
        if moderator:
            self._learned.add(channel)
        elif tags.get("mod") == "0":
            self._learned.discard(channel)  # back to what was configured

    def _lost(self, sock: Socket) -> None:
        if self._writable is sock:
            self._writable = None
        for pending in sock.pending.values():
            for item in pending:
                _settle(item, error=NotReady(
                    f"the connection was lost before Twitch answered the message to #{item.channel}: "
                    "it may or may not have been delivered (not sent again)"
                ))  # fmt: skip
        sock.pending.clear()

    # -- the life of the connection ---------------------------------------------------------------
    async def run(self) -> None:
        try:
            await super().run()
        except ConnFatalError as exc:
            self._fail_queued(str(exc))
            raise

    def _fail_queued(self, why: str) -> None:
        for item in list(self._queue):
            _settle(item, error=NotReady(f"{why}: the message to #{item.channel} was never written"))
        self._queue.clear()

    async def _connected(self) -> None:
        sock = await self._open()
        self._start(sock)
        self.state = ConnState.READY
        self.session_id = sock.id
        self._became_ready()
        await self._serve(sock)

    def _start(self, sock: Socket) -> None:
        self._writable = sock
        sock.spawn(self._pump(sock))
        self._wake.set()

    async def _replace(self, old: Socket) -> Socket:
        """Log in the replacement first, write on it, and close ``old`` once it is answered."""
        self._writable = None  # writes wait for the replacement
        try:
            new = await self._open(replacing=True)
        except (TransportError, TimeoutError) as exc:
            log.warning("%s: the replacement failed (%s); keeping the old socket", self.conn, exc)
            if old.alive:
                self._start(old)
            return old
        self._start(new)
        new.spawn(self._drain(old))
        self.counters.reconnects += 1
        return new

    async def _drain(self, old: Socket) -> None:
        deadline = self.clock.monotonic() + DRAIN_S
        while old.alive and old.pending and self.clock.monotonic() < deadline:
            old.wake.clear()
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self.clock, old.wake.wait(), deadline - self.clock.monotonic())
        self._discard(old)

    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> None:
        """Stop: queued messages are answered NotReady (never written), the sockets closed."""
        self._fail_queued("the sending connection closed")
        await super().close(handoff=handoff, timeout=timeout)

    # -- status -------------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """What ``status`` shows of this connection (no token)."""
        now = self.clock.monotonic()
        limits = self.limits
        return {
            "role": "send",
            "login": self.login,
            "queued": len(self._queue),
            "unanswered": sum(len(p) for s in self._sockets for p in s.pending.values()),
            "sent": self.sent,
            "refused": dict(self.refused),
            "window": f"{self.pacer.plain.used(now)}/{limits.privmsg_count}",
            "mod_window": f"{self.pacer.mod.used(now)}/{limits.privmsg_mod_count}",
            "moderated": sorted(self.moderates | self._learned),
        }
