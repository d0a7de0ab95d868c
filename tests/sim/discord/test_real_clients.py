"""Real Discord client libraries (discord.py, hikari) against the simulator.

Each client is pointed at the simulator by its own configuration points (discord.py: ``Route.BASE``
and ``DiscordWebSocket.DEFAULT_GATEWAY``; hikari: ``rest_url``, the gateway URL then comes from
``/gateway/bot``), runs four shards, and must get READY and every GUILD_CREATE on the right shard,
receive messages, and survive an op 7 and a dropped TCP connection by RESUMING with a gap-free and
duplicate-free sequence. Every payload each shard receives is recorded with its ``s`` by a hook on
the client's receive path, after decompression and before the client acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import discord
import discord.gateway
import discord.http
import discord.utils
import hikari
import hikari.impl.shard as hikari_shard
import pytest
import yarl
from hikari.api import GatewayCompression

from shardrunner.sim.discord.server import Simulator
from tests.conftest import TOKEN, SimFactory, http_json, wait_for

pytestmark = pytest.mark.asyncio

SHARDS: Final = 4
GUILDS_PER_SHARD: Final = 3
#: Dispatches per second per shard while the clients run: enough for messages on every shard and
#: for frames to be in flight when a fault hits, little enough for a slow CI machine.
RATE: Final = 60.0
#: The simulator's identify window; the discord.py client below waits a little longer between
#: identifies, as its default hook waits 5 s on Discord.
IDENTIFY_WINDOW: Final = 0.2
IDENTIFY_PACE: Final = 0.3
STEP: Final = 15.0  # deadline of each wait
#: A resuming shard waits until its session has this many dispatches it has not seen, so that every
#: resume here really replays (discord.py reconnects within milliseconds, before anything new).
REPLAY_AT_LEAST: Final = 10


# -- what every shard received ------------------------------------------------------------------
@dataclass(slots=True)
class Received:
    """One payload as a client's shard saw it."""

    op: int
    t: str | None
    s: int | None
    guild_id: int | None  # GUILD_CREATE only


@dataclass
class SeqLog:
    """Every payload each shard of one client received, in the order it received them."""

    by_shard: dict[int, list[Received]] = field(default_factory=lambda: defaultdict(list))

    def record(self, shard_id: int | None, payload: dict[str, Any]) -> None:
        t = payload.get("t")
        d = payload.get("d")
        gid = int(d["id"]) if t == "GUILD_CREATE" and isinstance(d, dict) else None
        self.by_shard[-1 if shard_id is None else shard_id].append(
            Received(payload["op"], t, payload.get("s"), gid)
        )

    def seqs(self, shard: int) -> list[int]:
        """Sequence numbers of the shard's dispatches, RESUMED included (it has a seq of its own)."""
        return [r.s for r in self.by_shard[shard] if r.op == 0 and r.s is not None]

    def last_seq(self, shard: int) -> int:
        return max(self.seqs(shard), default=0)

    def count(self, shard: int, t: str) -> int:
        return sum(1 for r in self.by_shard[shard] if r.t == t)

    def guild_creates(self, shard: int) -> list[int]:
        return [r.guild_id for r in self.by_shard[shard] if r.t == "GUILD_CREATE" and r.guild_id is not None]

    def resumed_seqs(self, shard: int) -> list[tuple[int | None, int | None]]:
        """(RESUMED's ``s``, seq of the dispatch just before it) for each RESUMED the shard got."""
        out: list[tuple[int | None, int | None]] = []
        last: int | None = None
        for r in self.by_shard[shard]:
            if r.t == "RESUMED":
                out.append((r.s, last))
            elif r.op == 0:
                last = r.s
        return out

    def assert_gap_free(self, shard: int) -> None:
        seqs = self.seqs(shard)
        if seqs == list(range(1, len(seqs) + 1)):
            return
        dupes = sorted(s for s, n in Counter(seqs).items() if n > 1)
        missing = sorted(set(range(1, max(seqs, default=0) + 1)) - set(seqs))
        pytest.fail(
            f"shard {shard}: sequence not gap-free: {len(seqs)} dispatches, last {max(seqs, default=0)}, "
            f"missing {missing[:20]}, duplicated {dupes[:20]}, out of order at "
            f"{next((i for i, s in enumerate(seqs) if s != i + 1), None)}"
        )


# -- simulator helpers --------------------------------------------------------------------------
def accepted(sim: Simulator, kind: str, shard: int) -> list[dict[str, Any]]:
    """Accepted ``identifies`` or ``resumes`` of ``[shard, SHARDS]``."""
    return [r for r in sim.stats()[kind] if r["accepted"] and r.get("shard") == [shard, SHARDS]]


def live_sessions(sim: Simulator, shard: int) -> list[dict[str, Any]]:
    """The simulator's sessions of ``[shard, SHARDS]`` that have not ended."""
    return [s for s in sim.stats()["sessions"] if s["shard"] == [shard, SHARDS] and s["ended"] is None]


def live_session(sim: Simulator, shard: int) -> dict[str, Any]:
    (entry,) = live_sessions(sim, shard)
    return entry


async def inject(sim: Simulator, **spec: Any) -> None:
    status, body, _ = await http_json(sim, "POST", "/_sim/fault", spec)
    assert status == 200, body
    assert len(body["applied"]) == 1, body


async def set_rate(sim: Simulator, rate: float) -> None:
    status, body, _ = await http_json(sim, "POST", "/_sim/config", {"rate": rate})
    assert status == 200, body
    assert body["rate"] == rate, body


def running(task: asyncio.Future[Any]) -> None:
    """Fail at once with what stopped the client (or its shard), rather than by a wait's timeout."""
    if task.done():
        exc = None if task.cancelled() else task.exception()
        raise AssertionError(f"client stopped early: {exc!r}") from exc


async def expect_resume(
    sim: Simulator, log: SeqLog, task: asyncio.Future[Any], shard: int, fault: str
) -> None:
    """Inject ``fault`` on ``shard``; the shard must RESUME (not IDENTIFY) and stay gap-free."""
    before = log.count(shard, "RESUMED")
    seq_before = log.last_seq(shard)

    def resumed() -> bool:
        running(task)
        return len(accepted(sim, "resumes", shard)) == 1 and log.count(shard, "RESUMED") == before + 1

    await inject(sim, kind=fault, shard=shard)
    await wait_for(resumed, STEP, f"shard {shard} to RESUME after {fault}")
    (resume,) = accepted(sim, "resumes", shard)
    assert resume["seq"] >= seq_before  # the client resumed from what it had processed, not earlier
    assert resume["replayed"] >= REPLAY_AT_LEAST, resume
    assert len(accepted(sim, "identifies", shard)) == 1, "the shard identified again instead of resuming"
    # The old connection ended without invalidating the session (no 1000/1001 from the client).
    closes = [c for c in sim.stats()["closes"] if c["shard"] == [shard, SHARDS]]
    assert closes, "the simulator recorded no close of the old connection"
    assert all(c["code"] not in (1000, 1001) for c in closes), closes
    if fault == "drop":
        assert any(c["by"] == "server" and c["reason"] == "dropped" for c in closes), closes
    # RESUMED takes the seq after the last replayed one, as on Discord; discord.py and hikari take
    # any dispatch's `s` as their seq, RESUMED's included.
    s, previous = log.resumed_seqs(shard)[-1]
    assert previous == resume["seq"] + resume["replayed"]
    assert s == previous + 1
    # Something after the resume point must arrive before the gap check means anything.
    await wait_for(lambda: log.last_seq(shard) > s, STEP, f"dispatches on shard {shard} after RESUMED")
    log.assert_gap_free(shard)


async def drain_and_check(sim: Simulator, log: SeqLog, task: asyncio.Future[Any]) -> None:
    """Stop the stream, wait until every shard has everything its session has, check the whole run."""
    await set_rate(sim, 0)

    def caught_up() -> bool:
        running(task)
        return all(log.last_seq(i) == live_session(sim, i)["last_seq"] for i in range(SHARDS))

    await wait_for(caught_up, STEP, "every shard to receive its session's last seq")
    for i in range(SHARDS):
        log.assert_gap_free(i)
        assert live_session(sim, i)["connected"]
    stats = sim.stats()
    assert stats["violations"] == []
    assert sorted(r["shard"][0] for r in stats["identifies"]) == list(range(SHARDS))
    assert all(r["accepted"] for r in stats["identifies"] + stats["resumes"])


async def hold_resume(sim: Simulator, shard: int, seq: int) -> None:
    """Let ``shard``'s session move REPLAY_AT_LEAST dispatches past ``seq`` before it is resumed.

    Runs inside the client: on timeout it lets the resume go on, and expect_resume reports it.
    """
    deadline = asyncio.get_running_loop().time() + STEP
    while asyncio.get_running_loop().time() < deadline:
        sessions = live_sessions(sim, shard)
        if sessions and sessions[0]["last_seq"] >= seq + REPLAY_AT_LEAST:
            return
        await asyncio.sleep(0.01)


def check_guild_layout(sim: Simulator, log: SeqLog) -> None:
    """Every guild's GUILD_CREATE came once, on the shard Discord's formula names."""
    for i in range(SHARDS):
        creates = log.guild_creates(i)
        assert sorted(creates) == sorted(sim.world.guilds_for(i, SHARDS)), f"shard {i}"
        assert all((gid >> 22) % SHARDS == i for gid in creates)


async def start_sim(sim_factory: SimFactory) -> Simulator:
    return await sim_factory(
        shards=SHARDS,
        guilds_per_shard=GUILDS_PER_SHARD,
        rate=RATE,
        identify_window=IDENTIFY_WINDOW,
        heartbeat_interval_ms=1000,
        seed=7,
    )


# -- discord.py ---------------------------------------------------------------------------------
class DiscordZlibContext:
    """discord.py's own zlib-stream context (``utils._ZlibDecompressionContext``).

    discord.py 2.7 defines it only when no zstd module is importable; shardrunner depends on
    ``zstandard``, so here discord.py asks for zstd-stream by default and this puts zlib back.
    """

    __slots__ = ("buffer", "context")

    COMPRESSION_TYPE: str = "zlib-stream"

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.context = zlib.decompressobj()

    def decompress(self, data: bytes, /) -> str | None:
        self.buffer.extend(data)
        if len(data) < 4 or data[-4:] != b"\x00\x00\xff\xff":
            return None
        msg = self.context.decompress(self.buffer)
        self.buffer = bytearray()
        return msg.decode("utf-8")


class ShardedBot(discord.AutoShardedClient):
    """An AutoShardedClient that keeps what happened to it."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.ready_shards: list[int] = []
        self.resumed_shards: list[int] = []
        self.messages: list[discord.Message] = []

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # The default waits 5 s, Discord's identify window; the simulator's is IDENTIFY_WINDOW.
        if not initial:
            await asyncio.sleep(IDENTIFY_PACE)

    async def on_shard_ready(self, shard_id: int) -> None:
        self.ready_shards.append(shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.resumed_shards.append(shard_id)

    async def on_message(self, message: discord.Message) -> None:
        self.messages.append(message)


@contextlib.contextmanager
def discordpy_against(sim: Simulator, monkeypatch: pytest.MonkeyPatch, compress: str) -> Iterator[SeqLog]:
    """Point discord.py at ``sim`` and record every payload per shard (undone by monkeypatch)."""
    monkeypatch.setattr(discord.http.Route, "BASE", sim.url + "/api/v10")
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(sim.gateway_url))
    if compress == "zlib-stream":
        monkeypatch.setattr(discord.utils, "_ActiveDecompressionContext", DiscordZlibContext)
    asked = discord.utils._ActiveDecompressionContext.COMPRESSION_TYPE
    assert asked == compress, f"discord.py would ask for {asked}"
    log = SeqLog()

    # `log_receive` gets every inflated payload of a connection before discord.py handles it (it is
    # a no-op unless enable_debug_events, which would replace it per instance).
    def log_receive(ws: discord.gateway.DiscordWebSocket, msg: str, /) -> None:
        log.record(ws.shard_id, json.loads(msg))

    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "log_receive", log_receive)

    # Shard.reidentify reconnects through from_client(resume=True, sequence=<last seq>, ...).
    from_client = discord.gateway.DiscordWebSocket.__dict__["from_client"].__func__

    async def held_from_client(cls: Any, client: discord.Client, **kwargs: Any) -> Any:
        if kwargs.get("resume") and kwargs.get("sequence") is not None:
            await hold_resume(sim, kwargs["shard_id"], kwargs["sequence"])
        return await from_client(cls, client, **kwargs)

    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "from_client", classmethod(held_from_client))
    yield log


async def stop_discordpy(client: discord.Client, task: asyncio.Task[Any]) -> None:
    await asyncio.wait_for(client.close(), 10)
    # start() returns once close() is through; what it raised before was reported by `running`.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compress", ["zstd-stream", "zlib-stream"])
async def test_discordpy_when_shard_gets_op7_or_drop_resumes_gap_free(
    sim_factory: SimFactory, monkeypatch: pytest.MonkeyPatch, compress: str
) -> None:
    """AutoShardedClient: 4 READY, every GUILD_CREATE on its shard, on_message, op 7 and a dropped
    TCP connection each end in an accepted RESUME with a replay, every shard's seqs 1..last."""
    sim = await start_sim(sim_factory)
    with discordpy_against(sim, monkeypatch, compress) as log:
        client = ShardedBot(intents=discord.Intents.default(), shard_count=SHARDS, guild_ready_timeout=0.3)
        task = asyncio.create_task(client.start(TOKEN))
        try:

            def ready() -> bool:
                running(task)
                return sorted(client.ready_shards) == list(range(SHARDS))

            await wait_for(ready, STEP, "on_shard_ready for every shard")
            await wait_for(lambda: len(client.guilds) == SHARDS * GUILDS_PER_SHARD, STEP, "every guild")
            assert {g.id for g in client.guilds} == set(sim.world.guild_ids)
            # discord.py derives shard_id from the id; which connection each guild came on is in the log.
            assert all(g.shard_id == (g.id >> 22) % SHARDS for g in client.guilds)
            check_guild_layout(sim, log)
            await wait_for(lambda: len(client.messages) >= 5, STEP, "on_message")
            assert all(m.guild is None or m.guild in client.guilds for m in client.messages)

            await expect_resume(sim, log, task, 1, "reconnect")
            await expect_resume(sim, log, task, 2, "drop")
            await wait_for(lambda: sorted(client.resumed_shards) == [1, 2], STEP, "on_shard_resumed")
            await drain_and_check(sim, log, task)
        finally:
            await stop_discordpy(client, task)


@pytest.mark.timeout(60)
async def test_discordpy_when_token_malformed_login_raises_login_failure(
    sim_factory: SimFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token Discord would not issue: login() gets 401 from /users/@me and raises LoginFailure."""
    sim = await start_sim(sim_factory)
    with discordpy_against(sim, monkeypatch, "zstd-stream"):
        client = discord.Client(intents=discord.Intents.default())
        try:
            with pytest.raises(discord.LoginFailure, match="Improper token"):
                await client.login("bad")
        finally:
            await client.close()
    assert sim.stats()["identifies"] == []


# -- hikari -------------------------------------------------------------------------------------
@contextlib.contextmanager
def hikari_against(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, compression: GatewayCompression
) -> Iterator[SeqLog]:
    """Make hikari's shards use ``compression``, record every payload per shard, hold resumes."""
    # GatewayBot has no compression option: every shard takes GatewayShardImpl's default.
    defaults = hikari_shard.GatewayShardImpl.__init__.__kwdefaults__
    assert defaults is not None
    monkeypatch.setitem(defaults, "compression", compression)
    log = SeqLog()
    receive_json = hikari_shard._GatewayTransport.receive_json

    # Every payload of every transport (zlib, zstd, none) passes here decoded, before the shard
    # acts on it; the transport's logger is the shard's ("hikari.gateway.<id>").
    async def recording(transport: Any) -> Any:
        payload = await receive_json(transport)
        log.record(int(transport._logger.name.rpartition(".")[2]), payload)
        return payload

    monkeypatch.setattr(hikari_shard._GatewayTransport, "receive_json", recording)

    # _connect resumes when the shard has a seq (hikari's backoff of 1-2 s already lets the session
    # move on; the hold makes that explicit).
    connect = hikari_shard.GatewayShardImpl._connect

    async def held_connect(shard: Any) -> Any:
        if shard._seq is not None:
            await hold_resume(sim, shard._shard_id, shard._seq)
        return await connect(shard)

    monkeypatch.setattr(hikari_shard.GatewayShardImpl, "_connect", held_connect)
    yield log


def hikari_bot(sim: Simulator, token: str = TOKEN) -> hikari.GatewayBot:
    return hikari.GatewayBot(
        token,
        rest_url=sim.url + "/api/v10",
        intents=hikari.Intents.ALL_UNPRIVILEGED,
        banner=None,
        suppress_optimization_warning=True,
        logs=None,
    )


async def start_hikari(bot: hikari.GatewayBot) -> None:
    await asyncio.wait_for(
        bot.start(
            shard_count=SHARDS,
            check_for_updates=False,
            ignore_session_start_limit=False,
        ),
        STEP,
    )


async def stop_hikari(bot: hikari.GatewayBot) -> None:
    if bot.is_alive:
        await asyncio.wait_for(bot.close(), 10)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "compression",
    [GatewayCompression.TRANSPORT_ZLIB_STREAM, GatewayCompression.TRANSPORT_ZSTD_STREAM],
    ids=["zlib-stream", "zstd-stream"],
)
async def test_hikari_when_shard_gets_op7_or_drop_resumes_gap_free(
    sim_factory: SimFactory, monkeypatch: pytest.MonkeyPatch, compression: GatewayCompression
) -> None:
    """GatewayBot: the same as for discord.py, with both transport compressions hikari has."""
    # hikari starts one window of max_concurrency shards every >= 5 s: one window for all four.
    sim = await sim_factory(
        shards=SHARDS,
        guilds_per_shard=GUILDS_PER_SHARD,
        rate=RATE,
        identify_window=IDENTIFY_WINDOW,
        heartbeat_interval_ms=1000,
        max_concurrency=SHARDS,
        seed=7,
    )
    with hikari_against(sim, monkeypatch, compression) as log:
        bot = hikari_bot(sim)
        ready: list[int] = []
        resumed: list[int] = []
        available: dict[int, int] = {}
        messages: list[hikari.GuildMessageCreateEvent] = []

        async def on_ready(event: hikari.ShardReadyEvent) -> None:
            ready.append(event.shard.id)

        async def on_resumed(event: hikari.ShardResumedEvent) -> None:
            resumed.append(event.shard.id)

        async def on_available(event: hikari.GuildAvailableEvent) -> None:
            available[int(event.guild_id)] = event.shard.id

        async def on_message(event: hikari.GuildMessageCreateEvent) -> None:
            messages.append(event)

        bot.subscribe(hikari.ShardReadyEvent, on_ready)
        bot.subscribe(hikari.ShardResumedEvent, on_resumed)
        bot.subscribe(hikari.GuildAvailableEvent, on_available)
        bot.subscribe(hikari.GuildMessageCreateEvent, on_message)
        try:
            await start_hikari(bot)
            assert sorted(bot.shards) == list(range(SHARDS))
            await wait_for(
                lambda: sorted(ready) == list(range(SHARDS)), STEP, "ShardReadyEvent on every shard"
            )
            await wait_for(
                lambda: len(bot.cache.get_guilds_view()) == SHARDS * GUILDS_PER_SHARD,
                STEP,
                "every guild cached",
            )
            assert set(bot.cache.get_guilds_view()) == set(sim.world.guild_ids)
            await wait_for(lambda: len(available) == SHARDS * GUILDS_PER_SHARD, STEP, "GuildAvailableEvent")
            assert all(shard == (gid >> 22) % SHARDS for gid, shard in available.items())
            check_guild_layout(sim, log)
            await wait_for(lambda: len(messages) >= 5, STEP, "GuildMessageCreateEvent")
            assert all(m.shard.id == available.get(int(m.guild_id)) for m in messages)

            # join() ends when the bot closes or any shard stops: `running` watches it.
            joined = asyncio.ensure_future(bot.join())
            try:
                await expect_resume(sim, log, joined, 1, "reconnect")
                await expect_resume(sim, log, joined, 2, "drop")
                await wait_for(lambda: sorted(resumed) == [1, 2], STEP, "ShardResumedEvent")
                await drain_and_check(sim, log, joined)
            finally:
                joined.cancel()
                await asyncio.gather(joined, return_exceptions=True)
        finally:
            await stop_hikari(bot)


@pytest.mark.timeout(60)
async def test_hikari_when_token_malformed_start_raises_unauthorized(sim_factory: SimFactory) -> None:
    """start() gets 401 from /gateway/bot and raises UnauthorizedError before any shard connects."""
    sim = await start_sim(sim_factory)
    # hikari itself refuses a token whose first part is not base64 (ValueError in GatewayBot());
    # this one gets past that and is malformed for Discord (two parts instead of three).
    bot = hikari_bot(sim, TOKEN.split(".")[0] + ".forged")
    try:
        with pytest.raises(hikari.UnauthorizedError) as info:
            await start_hikari(bot)
        assert info.value.status == 401
        assert info.value.message == "401: Unauthorized"
    finally:
        await stop_hikari(bot)
    assert sim.stats()["identifies"] == []
