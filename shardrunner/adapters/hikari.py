"""A hikari ``GatewayBot`` on shardrunner's stream instead of its own gateway connections.

```python
bot = hikari.GatewayBot(token)          # as before: listeners, cache settings, REST

@bot.listen()
async def on_message(event: hikari.GuildMessageCreateEvent) -> None: ...

shardrunner.adapters.hikari.run(bot, group="mybot")   # instead of bot.run()
```

:func:`start` does what ``GatewayBot.start`` does, but for the connections: it starts the bot's
REST and voice components, dispatches ``StartingEvent``, joins the consumer group ``group`` of the
running cluster, puts one :class:`~shardrunner.adapters.hikari_shard.BusShard` per shard of the set
that delivers into ``bot.shards``, feeds the cluster's state (each connection's READY, its
GUILD_CREATEs and the structural events since: ``Client.fetch_state``; the structural events update
the cache without waking listeners), starts feeding the stream, and dispatches ``StartedEvent``.
A live event the state already holds is not fed again (:meth:`HikariAdapter.feed`, the rule of the
discord.py adapter). Every Discord event goes into
``bot.event_manager.consume_raw_event(name, shard, payload)``, as hikari's own shard hands it on,
so the cache and every listener work. ``bot.close()`` ends it: the shards' ``close`` stops the
feed and closes the client, which acknowledges what was fed and leaves the group.

An event counts as processed (acknowledged) once hikari's event manager took it: its cache was
updated and its listeners were scheduled, not run to the end. See docs/adapters.md (its hikari
section) for the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import hikari
from hikari import errors, presences, snowflakes

from shardrunner.adapters.hikari_shard import BusShard
from shardrunner.client import Client, ClientError, ClientEvent
from shardrunner.client.discord import active_set
from shardrunner.protocol.discord import STATE_EVENTS as STATE_EVENT_NAMES

log = logging.getLogger("shardrunner.adapters.hikari")

PLATFORM: Final = "discord"
#: The dispatches the cluster's state holds (the worker's state cache: READY and
#: ``protocol.discord.STATE_EVENTS``). A live one the fetched state already covers is not handed to
#: hikari again: it would put an older view of the guild over the state's.
STATE_EVENTS: Final = frozenset({"READY"}) | STATE_EVENT_NAMES
#: What of a ``GatewayBot`` the adapter sets itself, as ``GatewayBot.start`` would: hikari has no
#: public way to run a bot on shards it did not make (checked by :func:`start`, tested with 2.7).
_BOT_INTERNALS: Final = ("_closed_event", "_closing_event", "_shards", "_rest", "_voice", "_event_manager")
#: The state's events that hikari dispatches to listeners, as its own start would: the rest of the
#: state (the structural events since) only updates the cache: it is state, not news.
_STATE_NEWS: Final = frozenset({"READY", "GUILD_CREATE"})


class HikariAdapter:
    """One running bot: its client, its shards, the feed from the stream into its event manager."""

    def __init__(self, bot: hikari.GatewayBot, client: Client, *, status_every: float | None) -> None:
        self.bot = bot
        self.client = client
        self.status_every = status_every
        self.generation = -1
        self.count = 0
        self.shards: dict[int, BusShard] = {}
        #: Events handed to hikari's event manager; live copies of state events left out.
        self.fed = 0
        self.skipped = 0
        #: Per connection, the (session, seq) the fetched state reflects (its mark).
        self.marks: dict[Any, tuple[str, int]] = {}
        self._user_id: snowflakes.Snowflake | None = None
        self._next_check = 0.0
        self._closed = asyncio.Event()
        self._closing: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- the shards -----------------------------------------------------------------------------
    def refresh_set(self) -> bool:
        """Make ``bot.shards`` the set that delivers now (it changes with a reshard's switch);
        True if it changed."""
        conns = active_set(self.client.conns, self.client.platforms)
        if not conns or (conns[0].generation, len(conns)) == (self.generation, self.count):
            return False
        self.generation, self.count = conns[0].generation, len(conns)
        bot = self.bot
        self.shards = {
            i: BusShard(
                i,
                self.count,
                intents=bot.intents,
                capabilities=bot.capabilities,
                send=self._send,
                on_close=self.close,
                closed=self._closed,
            )
            for i in range(self.count)
        }
        for shard in self.shards.values():
            shard.user_id = self._user_id
        bot._shards.clear()
        bot._shards.update(self.shards)
        log.info("the bot runs on shards 0-%d of set %d", self.count - 1, self.generation)
        return True

    async def _send(self, op: int, d: dict[str, Any], shard: int) -> None:
        await self.client.send(op, d, shard=shard)

    def shard_of(self, event: ClientEvent) -> BusShard:
        """The shard object an event is handed to hikari with: its own connection's, or, for an
        event of another set (a reshard's overlap), the shard of this set that owns its guild."""
        conn = event.conn
        # A newer set delivers during a reshard's overlap before the switch names it: look again
        # at most once a second, not at each of its events.
        newer = conn.generation > self.generation and time.monotonic() >= self._next_check
        if newer and not self.refresh_set():
            self._next_check = time.monotonic() + 1.0
        if conn.generation == self.generation and conn.count == self.count:
            return self.shards[conn.shard]
        guild = event.guild_id
        return self.shards[0 if guild is None else snowflakes.calculate_shard_id(self.count, guild)]

    # -- the feed -------------------------------------------------------------------------------
    def feed_state(self, events: Iterable[ClientEvent], marks: Mapping[Any, tuple[str, int]]) -> None:
        """Feed the cluster's state, in order, and keep each connection's mark: the ``(session,
        seq)`` its answer reflects (``marks``: ``Client.state_marks``), else its last event's."""
        self.marks = {conn: mark for conn, mark in marks.items() if conn.platform == PLATFORM}
        for event in events:
            conn = event.conn
            mark = self.marks.get(conn)
            if mark is None or (mark[0] == event.session and mark[1] < event.seq):
                self.marks[conn] = (event.session, event.seq)
            if event.name in _STATE_NEWS:
                self._consume(event)
            else:
                with self._unheard():
                    self._consume(event)

    @contextlib.contextmanager
    def _unheard(self) -> Iterator[None]:
        """hikari's dispatch finds no listener and no waiter meanwhile; its cache is updated."""
        manager = self.bot._event_manager
        listeners, waiters = manager._listeners, manager._waiters
        manager._listeners, manager._waiters = {}, {}
        try:
            yield
        finally:
            manager._listeners, manager._waiters = listeners, waiters

    def feed(self, event: ClientEvent) -> None:
        """Hand one event of the stream to hikari, unless it is not Discord's or the fetched state
        holds it already (the rule of the discord.py adapter, per connection against its mark):
        a state event of the mark's session at or below its seq (also one redelivered after newer
        ones: a killed bot's unacknowledged events come again), or of another session before a
        READY of another session came (an older session's backlog)."""
        conn = event.conn
        if conn.platform != PLATFORM:
            return
        mark = self.marks.get(conn) if self.marks else None
        if mark is not None and event.name in STATE_EVENTS:
            session, seq = mark
            if event.session == session:
                if event.seq <= seq:
                    self.skipped += 1
                    return
            elif event.name == "READY":
                del self.marks[conn]  # a session newer than the state: all of it is news
            else:
                self.skipped += 1
                return
        self._consume(event)

    def _consume(self, event: ClientEvent) -> None:
        shard = self.shard_of(event)
        name, data = event.name, event.data
        if name == "READY":
            self._user_id = snowflakes.Snowflake(data["user"]["id"])
            for each in self.shards.values():
                each.user_id = self._user_id
            shard.connected = True
        elif name == "RESUMED":
            shard.connected = True
        try:
            self.bot.event_manager.consume_raw_event(name, shard, data)
        except LookupError:  # a dispatch hikari does not know (as its own shard does)
            log.debug("hikari has no handler for %s: ignored", name)
        self.fed += 1

    async def _pump(self) -> None:
        while True:
            try:
                event = await self.client.next_event()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the stream from shardrunner stopped; the bot is closing")
                if self._closing is None:  # this task is done by the time the close runs
                    self._closing = asyncio.ensure_future(self._close())
                return
            try:
                self.feed(event)
            except Exception:  # one event hikari (or the adapter) cannot take: the next one can
                log.exception("%r could not be handed to hikari; going on", event)

    async def read_status(self) -> None:
        """Each shard's heartbeat latency and state from the cluster's status (kept if it fails)."""
        with contextlib.suppress(ClientError):
            self.apply_status(await self.client.discovery.ask("status", timeout=5))

    async def _watch_status(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await self.read_status()

    def apply_status(self, status: dict[str, Any]) -> None:
        """Take the latency and the state of this set's shards from a ``status`` answer."""
        self.refresh_set()
        for entry in status.get("shards") or ():
            if entry.get("platform") != PLATFORM or entry.get("generation") != self.generation:
                continue
            shard = self.shards.get(entry.get("shard", -1))
            if shard is None:
                continue
            latency = entry.get("latency_ms")
            shard.latency = math.nan if latency is None else latency / 1000
            shard.connected = entry.get("state") == "ready"

    # -- lifecycle ------------------------------------------------------------------------------
    async def run_feed(self) -> None:
        self._tasks.append(asyncio.create_task(self._pump(), name="shardrunner feed"))
        if self.status_every:
            task = asyncio.create_task(self._watch_status(self.status_every), name="shardrunner status")
            self._tasks.append(task)

    async def close(self) -> None:
        """Stop the feed, acknowledge what was fed, leave the group (once; every shard calls it)."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.client.close()
        finally:
            self._closed.set()

    async def join(self) -> None:
        """Wait until the adapter stopped."""
        await self._closed.wait()


def _check_bot(bot: hikari.GatewayBot) -> None:
    missing = [name for name in _BOT_INTERNALS if not hasattr(bot, name)]
    if missing:
        raise TypeError(
            f"this hikari ({hikari.__version__}) has no {', '.join(missing)} on GatewayBot: "
            "the shardrunner adapter needs hikari 2.7 or a version with the same GatewayBot"
        )
    if bot.is_alive:
        raise errors.ComponentStateConflictError("bot is already running")


async def _wait_for_shards(client: Client, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not client.num_shards:
        if time.monotonic() > deadline:
            raise ClientError(f"the cluster runs no Discord shards (waited {timeout:g} s)")
        await asyncio.sleep(0.1)


async def start(
    bot: hikari.GatewayBot,
    *,
    group: str = "hikari",
    run_dir: str | Path | None = None,
    client: Client | None = None,
    events: list[str] | None = None,
    state: bool = True,
    state_timeout: float = 30.0,
    status_every: float | None = 10.0,
    shards_timeout: float = 30.0,
    activity: presences.Activity | None = None,
    status: presences.Status | None = None,
) -> HikariAdapter:
    """Start ``bot`` on the running cluster's stream, as consumer group ``group``; returns once the
    state is fed and ``StartedEvent`` dispatched (the stream then runs until ``bot.close()``).

    ``client``: a client made by the caller (not started; its group and options are its own),
    else one is made with ``run_dir``, ``group`` and ``events`` (the event names to subscribe to,
    None: all). ``state``: feed ``Client.fetch_state`` first (the cluster must keep it: its state
    cache). ``status_every``: seconds between status reads for the shards' heartbeat latency and
    state (None: never; the latency then stays NaN). ``activity``/``status``: a presence sent on
    every shard once started, as ``bot.start(activity=...)`` would have identified with.
    Raises :class:`~shardrunner.client.ClientError` if no cluster runs or it has no Discord shards.
    """
    _check_bot(bot)
    client = client or Client(run_dir, group=group, events=events)
    await client.start()
    try:
        await _wait_for_shards(client, shards_timeout)
    except BaseException:
        await client.close()
        raise
    adapter = HikariAdapter(bot, client, status_every=status_every)
    # What GatewayBot.start does before its shards, and what makes is_alive, join and close work.
    bot._closed_event = asyncio.Event()
    bot._closing_event = asyncio.Event()
    try:
        bot._rest.start()
        bot._voice.start()
        await bot.event_manager.dispatch(bot.event_factory.deserialize_starting_event(), return_tasks=True)
        adapter.refresh_set()
        if state:
            try:
                fetched = await client.fetch_state(PLATFORM, timeout=state_timeout)
                marks = client.state_marks
            except ClientError as exc:
                log.warning(
                    "no state from the cluster (%s): the cache holds only what the stream brings", exc
                )
            else:
                adapter.feed_state(fetched, marks)
        if status_every:
            await adapter.read_status()
        await adapter.run_feed()
        await bot.event_manager.dispatch(bot.event_factory.deserialize_started_event(), return_tasks=True)
        if activity is not None or status is not None:
            await bot.update_presence(activity=activity, status=status or presences.Status.ONLINE)
    except BaseException:
        await bot.close()
        await adapter.close()  # also when it failed before the shards that close it were made
        raise
    return adapter


def run(bot: hikari.GatewayBot, *, group: str = "hikari", **options: Any) -> None:
    """``bot.run()`` on shardrunner: :func:`start` with these options, then until the bot closes,
    the stream ends, SIGINT or SIGTERM; then ``bot.close()``."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await start(bot, group=group, **options)
        stopping = asyncio.ensure_future(stop.wait())
        joined = asyncio.ensure_future(bot.join())
        try:
            await asyncio.wait([stopping, joined], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            joined.cancel()
            if bot.is_alive:
                await bot.close()

    asyncio.run(main())
