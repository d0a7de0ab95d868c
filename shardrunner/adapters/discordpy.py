"""A discord.py ``Client`` or ``commands.Bot`` on shardrunner's stream instead of its own gateway.

One line changes in the bot (docs/adapters.md)::

    await shardrunner.adapters.discordpy.run(bot, token, group="mybot")   # instead of bot.start()
    bot = shardrunner.adapters.discordpy.adapt(commands.Bot(...))         # then bot.run(token)

The bot logs in over REST as usual (its ``HTTPClient``, its token: REST stays its own), then joins
a consumer group of the cluster. Each event's ``d`` goes to the parser of the bot's
``ConnectionState`` (``parse_<name>``), as discord.py's gateway does after decoding, so its cache,
events, commands and extensions work; its gateway sends go through the bus
(:class:`~shardrunner.adapters.discordpy_socket.BusSocket`).

Start: after joining, :meth:`Client.fetch_state` gives each shard's READY, its guilds'
GUILD_CREATEs (parsed as a fresh discord.py start would: ``on_connect``, ``on_guild_available``,
``on_shard_ready``, ``on_ready``) and the structural events since (parsed without dispatching:
they are state, not news). The rule for the live events that follow, per shard, against the mark
``(session, seq)`` the state reflects: a structural event (``STATE_EVENTS``) or READY at or below
the mark (also one redelivered after newer events: the events a killed bot had not acknowledged
come again), or of another session before a READY of another session came (an older session's
backlog), is not parsed again: its effect is in the state. Every other event is parsed and
dispatched: a message that waited in the durable backlog while no bot ran reaches ``on_message``.

Acknowledgement: an event counts as processed once its parser ran. discord.py runs the handlers
as tasks of their own: a handler still running when the bot dies is not redelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import discord

from shardrunner.adapters.discordpy_socket import BusSocket
from shardrunner.client import Client, ClientError, ClientEvent
from shardrunner.client.discord import active_set
from shardrunner.protocol.discord import STATE_EVENTS
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.adapters.discordpy")

PLATFORM: Final = "discord"
#: Seconds between two asks of the cluster's status (the shards' latency and readiness).
STATUS_EVERY_S: Final = 5.0
#: How long the adapter waits for the cluster to say how many shards it runs.
SHARDS_TIMEOUT_S: Final = 30.0
_REPLAYED: Final = STATE_EVENTS | {"READY"}


def _ignore(*args: Any, **kwargs: Any) -> None:
    """The dispatch of a parser run for state only."""


class Adapter:
    """Feeds a discord.py bot from a shardrunner :class:`Client` (see the module)."""

    def __init__(self, bot: discord.Client, client: Client) -> None:
        self.bot = bot
        self.client = client
        self.state: Any = bot._connection  # discord.py's ConnectionState (its parsers, its cache)
        self.sharded = isinstance(bot, discord.AutoShardedClient)
        self.latencies: dict[int, float] = {}
        self.shard_count = 0
        #: Per connection, the ``(session, seq)`` the fetched state reflects (until a READY of
        #: another session comes: a new session, all of it news).
        self.marks: dict[ConnKey, tuple[str, int]] = {}
        self.parsed = 0
        self.skipped = 0
        self._readied = False
        #: The shards whose READY (fetched, live or made up) the bot's state has had.
        self.readied: set[int] = set()
        #: Called with each live event once handled: True when its parser ran, False when it was
        #: skipped as held in the fetched state (tests and metrics count with it).
        self.on_event: Callable[[ClientEvent, bool], None] | None = None

    # -- set-up ---------------------------------------------------------------------------------
    async def connect(self) -> None:
        """Join the cluster, stand in for the bot's gateway, and apply the fetched state."""
        client = self.client
        await client.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SHARDS_TIMEOUT_S
        # Every shard's worker known (so joined) before the state is asked: a worker joined
        # later would have its READYs neither in the fetched state nor in the live stream.
        while not (count := self._all_known()):
            if loop.time() > deadline:
                raise ClientError(
                    f"the cluster's Discord shards were not all running within {SHARDS_TIMEOUT_S:g} s"
                )
            await asyncio.sleep(0.1)
        self.shard_count = count
        self._install(count)
        events = await client.fetch_state(PLATFORM)  # after the join: a later READY comes live
        fetched = {c: m for c, m in client.state_marks.items() if c.platform == PLATFORM}
        # ("", 0): kept, but no READY seen (not yet, or a session resumed by a new worker).
        self.marks = {c: m for c, m in fetched.items() if m[0]}
        if not fetched:
            log.warning(
                "the cluster keeps no Discord state (state_cache is off): this bot's cache holds "
                "only what the events it sees build; guilds it has not seen created are missing"
            )
        for event in events:
            self._feed_state(event)
        self._ready_missing(await self._status())

    def _ready_missing(self, ready: set[int]) -> None:
        """A READY with no guilds for each shard the cluster says is ready whose READY this bot
        has not had (it came before the bot joined and no state holds it): without it discord.py
        would never be ready. Asked again with every status, as the status lags behind."""
        shards = active_set(self.client.conns, self.client.platforms)
        for shard in sorted(ready - self.readied):
            conn = shards[shard] if shard < len(shards) else None
            if conn is not None and conn not in self.marks:
                log.warning(
                    "%s: the worker keeps no state of its session; its guilds fill in as they come", conn
                )
                self._parse("READY", self._ready_body(shard), shard)

    def _all_known(self) -> int:
        """The shard count once every shard of the delivering set is on a known worker, else 0."""
        client = self.client
        shards = active_set(client.conns, client.platforms)
        return len(shards) if shards and set(shards) <= set(client.conns) else 0

    def _install(self, count: int) -> None:
        bot, state = self.bot, self.state
        state.shard_count = count
        bot.shard_count = count
        if self.sharded:
            bot._reconnect = False  # type: ignore[attr-defined]  # connect() sets it; Shard reads it
            shards = {
                i: discord.shard.Shard(BusSocket(self.client, i, self.latencies), bot, _ignore)  # type: ignore[arg-type]
                for i in range(count)
            }
            setattr(bot, "_AutoShardedClient__shards", shards)  # noqa: B010  (name-mangled)
            bot.shard_ids = list(range(count))  # type: ignore[attr-defined]
            state.shard_ids = range(count)
        else:
            bot.ws = BusSocket(self.client, None, self.latencies)  # type: ignore[assignment]

    def _ready_body(self, shard: int) -> dict[str, Any]:
        """A READY with no guilds, for a shard whose session the workers kept nothing of."""
        user = self.bot.user
        body: dict[str, Any] = {
            "v": 10,
            "user": user._to_minimal_user_json() if user is not None else {},
            "guilds": [],
            "session_id": "",
            "shard": [shard, self.shard_count],
        }
        if self.bot.application_id is not None:
            body["application"] = {"id": str(self.bot.application_id), "flags": 0}
        return body

    async def _status(self) -> set[int]:
        """Ask the cluster for its shards' latency; the Discord shards that are ready."""
        try:
            status = await self.client.discovery.ask("status", timeout=5)
        except ClientError:
            return set()
        ready: set[int] = set()
        for s in status.get("shards", []):
            if s.get("platform") != PLATFORM or s.get("count") != self.shard_count:
                continue
            latency = s.get("latency_ms")
            self.latencies[int(s["shard"])] = math.nan if latency is None else latency / 1000
            if s.get("state") == "ready":
                ready.add(int(s["shard"]))
        return ready

    # -- events ---------------------------------------------------------------------------------
    def _feed_state(self, event: ClientEvent) -> None:
        if event.name in ("READY", "GUILD_CREATE"):
            self._parse(event.name, event.data, event.shard)
            return
        self.state.dispatch = _ignore  # a structural event since: state, not news
        try:
            self._parse(event.name, event.data, event.shard)
        finally:
            self.state.dispatch = self.bot.dispatch

    def feed(self, event: ClientEvent) -> None:
        """One live event: to its parser, unless the fetched state holds it already."""
        conn = event.conn
        if conn.platform != PLATFORM:
            return
        mark = self.marks.get(conn)
        if mark is not None:
            session, seq = mark
            if event.session == session:
                if event.seq <= seq and event.name in _REPLAYED:
                    self._skip(event)  # in the state (also when redelivered after newer ones)
                    return
            elif event.name == "READY":
                del self.marks[conn]  # a session newer than the state: all of it is news
            elif event.name in _REPLAYED:
                self._skip(event)  # an older session's backlog: the state is newer
                return
        self.bot.dispatch("socket_event_type", event.name)
        self._parse(event.name, event.data, event.shard)
        self.parsed += 1
        if self.on_event is not None:
            self.on_event(event, True)

    def _skip(self, event: ClientEvent) -> None:
        self.skipped += 1
        if self.on_event is not None:
            self.on_event(event, False)

    def _parse(self, name: str, data: Any, shard: int) -> None:
        parser = self.state.parsers.get(name)
        if parser is None:
            return
        try:
            if name == "READY":
                self.readied.add(shard)
            if name == "READY" and not self.sharded and self._readied:
                self._extra_ready(data)
                return
            if name == "READY":
                self._readied = True
            elif name == "RESUMED" and isinstance(data, dict):
                data["__shard_id__"] = shard
            parser(data)
        except Exception:
            log.exception("discord.py's parser of %s raised (shard %d)", name, shard)

    def _extra_ready(self, data: dict[str, Any]) -> None:
        """Another shard's READY in a plain ``Client``: its parse_ready would empty the cache of
        every other shard, so only its guilds are added (their GUILD_CREATEs follow)."""
        for guild in data.get("guilds", []):
            self.state._add_guild_from_data(guild)
        self.bot.dispatch("connect")

    async def run(self) -> None:
        """Feed every event until the bot closes (or the task is cancelled)."""
        status = asyncio.ensure_future(self._status_loop())
        try:
            async for event in self.client:
                self.feed(event)
                if self.bot.is_closed():
                    return
        finally:
            status.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await status

    async def _status_loop(self) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            self._ready_missing(await self._status())


async def run(
    bot: discord.Client,
    token: str,
    *,
    group: str = "discordpy",
    run_dir: str | Path | None = None,
    client: Client | None = None,
    **options: Any,
) -> None:
    """Log ``bot`` in (REST), then run it on the cluster's stream until it closes.

    ``group`` is the consumer group (every process of one bot shares it; events are spread over
    its members by guild); ``options`` go to :class:`~shardrunner.client.Client`. Or pass your
    own ``client`` (not started)."""
    client = client or Client(run_dir, group=group, **options)
    adapter = Adapter(bot, client)
    setattr(bot, "shardrunner", adapter)  # noqa: B010  (for the bot's own code: bot.shardrunner)
    try:
        await bot.login(token)
        await adapter.connect()
        feeding = asyncio.ensure_future(adapter.run())
        while not feeding.done() and not bot.is_closed():
            await asyncio.wait({feeding}, timeout=0.25)
        if feeding.done():
            feeding.result()
        feeding.cancel()
    finally:
        await client.close()
        if not bot.is_closed():
            await bot.close()


def adapt(bot: discord.Client, *, group: str = "discordpy", **options: Any) -> discord.Client:
    """``bot`` with its ``start`` running on shardrunner, so ``bot.run(token)`` and
    ``await bot.start(token)`` stay as they are. ``options`` as for :func:`run`."""

    async def start(token: str, *, reconnect: bool = True) -> None:
        await run(bot, token, group=group, **options)

    bot.start = start  # type: ignore[method-assign]
    return bot
