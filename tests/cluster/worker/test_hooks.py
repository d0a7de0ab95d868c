"""A controller in a worker: only the hooks it overrides are installed; the router, a shard's
IDENTIFY, a Twitch login and a fatal close each get the default when the hook raises or hangs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any

import pytest

from shardrunner.bus.hooked import HookedRouter
from shardrunner.bus.router import Limits, Router
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.core import Worker
from shardrunner.cluster.worker.hooks import WorkerHooks
from shardrunner.controller import Controller, FatalAction
from shardrunner.gateway.connection import ConnFatalError
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.gateway.discord.platform import DiscordPlatform
from shardrunner.gateway.twitch.reader import TwitchReader
from shardrunner.protocol import twitch as tw
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.fakes import FakeClock, FakeConnection, FakePlatform, FakeTransport, GrantAll
from tests.gateway.twitch.helpers import CountingBudgets

TOKEN = "MTEwMA.secret-part.do-not-log"
CONN = ConnKey("discord", 0, 1, 4)
TWITCH = ConnKey("twitch", 0, 0, 1)
OLD = [ConnKey("discord", 0, s, 4) for s in range(4)]


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.005)


class Presence(Controller):
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        assert "token" not in payload
        status = "idle" if conn.shard % 2 else "online"
        return {**payload, "presence": {"status": status}, "shard": [9, 9], "token": "stolen"}


class Raising(Controller):
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("presence service down")

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        raise RuntimeError("no caps today")

    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        raise RuntimeError("cannot decide")


class Hanging(Controller):
    hook_timeout = 0.05

    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()
        return payload

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        await asyncio.Event().wait()
        return []

    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        await asyncio.Event().wait()
        return FatalAction.KEEP


class Nonsense(Controller):
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        return ["not", "a", "dict"]  # type: ignore[return-value]

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        return "twitch.tv/tags"  # type: ignore[return-value]

    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        return "explode"  # type: ignore[return-value]


class Unencodable(Controller):
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "presence": {"status": object()}}  # no JSON for it


class Verdict(Controller):
    def __init__(self, verdict: FatalAction) -> None:
        self.verdict = verdict

    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        return self.verdict


# -- the router ------------------------------------------------------------------------------
def test_make_router_when_the_controller_neither_filters_nor_routes_is_the_plain_router() -> None:
    for hooks in (WorkerHooks(), WorkerHooks(Controller()), WorkerHooks(Presence())):
        router = hooks.make_router(Limits())
        assert type(router) is Router


def test_make_router_when_the_filter_stalls_uninstalls_it() -> None:
    class Slow(Controller):
        stall_after = 0.005

        def accept(self, platform: str, name: str, key: int | str | None) -> bool:
            time.sleep(0.02)
            return False

        def route(self, group: str, name: str, key: int | str | None, members: Collection[str]) -> str | None:
            time.sleep(0.02)
            return None

    router = WorkerHooks(Slow()).make_router(Limits())
    assert isinstance(router, HookedRouter)
    assert router.accept is not None
    assert router.route is not None
    assert router.accept("discord", "MESSAGE_CREATE", 1) is True
    assert router.accept is None, "uninstalled: the hot path is the router's own again"
    assert router.route("g", "MESSAGE_CREATE", 1, ["a"]) is None
    assert router.route is None


# -- a shard's IDENTIFY --------------------------------------------------------------------------
@pytest.fixture
async def shard() -> AsyncIterator[Callable[[Controller], Any]]:
    made: list[tuple[DiscordShard, asyncio.Task[None], FakeClock]] = []

    async def make(controller: Controller) -> tuple[FakeConnection, GrantAll]:
        platform = WorkerHooks(controller).load("discord")
        assert isinstance(platform, DiscordPlatform)
        clock, transport, queue = FakeClock(fixed_random=0.5), FakeTransport(), GrantAll()
        options = ShardOptions(token=TOKEN, intents=513, compression=Compression.NONE)
        options.start_hook = platform.start_hook
        s = DiscordShard(
            CONN, options, lambda e: None, gateway_url="ws://gw.test", identify_queue=queue,
            transport=transport, clock=clock,
        )  # fmt: skip
        made.append((s, asyncio.ensure_future(s.run()), clock))
        await clock.settle()
        conn = transport.last
        conn.hello()
        await until(lambda: bool(conn.sent), 5, "an IDENTIFY")
        return conn, queue

    yield make
    for s, task, clock in made:
        await s.close()
        await clock.advance(1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_identify_when_overridden_sends_the_changed_payload_with_its_own_token_and_shard(
    shard: Any,
) -> None:
    conn, queue = await shard(Presence())
    d = conn.sent[0]["d"]
    assert d["presence"] == {"status": "idle"}
    assert d["token"] == TOKEN
    assert d["shard"] == [1, 4]
    assert d["intents"] == 513
    assert queue.acquired == [CONN]


@pytest.mark.parametrize("controller", [Raising, Hanging, Nonsense, Unencodable])
async def test_identify_when_the_hook_fails_sends_the_default_identify(
    shard: Any, controller: type[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    conn, queue = await shard(controller())
    d = conn.sent[0]["d"]
    assert "presence" not in d
    assert (d["token"], d["shard"], d["intents"]) == (TOKEN, [1, 4], 513)
    assert queue.acquired == [CONN]
    [record] = [r for r in caplog.records if r.name == "shardrunner.controller"]
    assert f"{controller.__name__}.identify" in record.getMessage()
    assert TOKEN not in caplog.text


async def test_identify_when_the_payload_cannot_be_encoded_counts_a_failure_each_time() -> None:
    hooks = WorkerHooks(Unencodable())
    hook = hooks.start_hook("discord")
    assert hook is not None
    payload = {"intents": 513, "shard": [1, 4]}
    for _ in range(2):
        assert await hook(CONN, payload) is payload
    assert hooks.failures() == {"identify": 2}


def test_load_when_the_platform_takes_no_start_hook_leaves_it_alone() -> None:
    fake = FakePlatform()
    assert WorkerHooks(Presence()).load("discord", lambda name: fake) is fake
    assert not hasattr(fake, "start_hook")
    assert WorkerHooks(Controller()).load("discord").start_hook is None  # type: ignore[attr-defined]


# -- a Twitch login ------------------------------------------------------------------------------
def reader(controller: Controller) -> TwitchReader:
    r = TwitchReader(
        TWITCH, login="bot", token="oauth:secret", channels=["a"], url="ws://127.0.0.1:1",
        sink=lambda e: None, budgets=CountingBudgets(),
    )  # fmt: skip
    r.start_hook = WorkerHooks(controller).start_hook("twitch")
    return r


async def test_twitch_login_when_overridden_drops_membership_but_keeps_tags_and_commands() -> None:
    class Quiet(Controller):
        async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
            assert nick == "bot"
            return []

    assert await reader(Quiet())._caps() == [tw.CAP_TAGS, tw.CAP_COMMANDS]
    assert WorkerHooks(Quiet()).load("twitch").start_hook is not None  # type: ignore[attr-defined]
    assert await reader(Controller())._caps() == list(tw.CAPS)


@pytest.mark.parametrize("controller", [Raising, Hanging, Nonsense])
async def test_twitch_login_when_the_hook_fails_requests_every_capability(
    controller: type[Controller],
) -> None:
    assert await reader(controller())._caps() == list(tw.CAPS)


# -- fatal closes ------------------------------------------------------------------------------
hooks_of: dict[Worker, WorkerHooks] = {}


@pytest.fixture
async def worker() -> AsyncIterator[Callable[[Controller], Any]]:
    made: list[Worker] = []

    async def make(controller: Controller) -> tuple[Worker, FakePlatform, FakeClock]:
        platform, clock = FakePlatform(), FakeClock(fixed_random=0.5)
        hooks = WorkerHooks(controller)
        w = Worker(0, 1, load=lambda name: platform, clock=clock, on_fatal=hooks.on_fatal_close)
        hooks_of[w] = hooks
        w.start(m.Assign(parts=[m.PlatformPart("discord", OLD, b"a")]))
        await clock.settle()
        made.append(w)
        platform.latest(OLD[0]).crash(ConnFatalError(OLD[0], 4014, "Discord refused the intents"))
        return w, platform, clock

    yield make
    for w in made:
        await w.conns.close_all()
        w.close()


def failed(w: Worker) -> list[m.ConnFailed]:
    out = []
    while not w.outbox.empty():
        message = w.outbox.get_nowait()
        if isinstance(message, m.ConnFailed):
            out.append(message)
    return out


async def test_fatal_close_when_kept_reports_it_without_stopping_and_does_not_rebuild(worker: Any) -> None:
    w, platform, clock = await worker(Verdict(FatalAction.KEEP))
    await until(lambda: not w.outbox.empty(), 5, "the report")
    assert failed(w) == [m.ConnFailed(OLD[0], 4014, "discord:0/4: Discord refused the intents", False)]
    await clock.advance(120)
    assert len(platform.built[OLD[0]]) == 1


async def test_fatal_close_when_retried_rebuilds_it_afresh_after_the_backoff(
    worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shardrunner.worker")
    w, platform, clock = await worker(Verdict(FatalAction.RETRY))
    await until(lambda: "retries" in caplog.text, 5, "the retry")
    await clock.advance(2)
    assert len(platform.built[OLD[0]]) == 2
    assert platform.latest(OLD[0]).resumed_from is None, "afresh: no session to resume"
    assert failed(w) == []


@pytest.mark.parametrize("controller", [Raising, Hanging, Nonsense])
async def test_fatal_close_when_the_hook_fails_stops_the_cluster_as_without_a_controller(
    worker: Any, controller: type[Controller]
) -> None:
    w, platform, _clock = await worker(controller())
    await until(lambda: not w.outbox.empty(), 5, "the report")
    [report] = failed(w)
    assert (report.conn, report.code, report.stop) == (OLD[0], 4014, True)
    assert len(platform.built[OLD[0]]) == 1
    assert hooks_of[w].failures() == {"on_fatal_close": 1}, "counted for the worker's reports"


def test_hooks_when_events_reach_a_plain_router_publish_is_the_routers_own() -> None:
    router = WorkerHooks(Controller()).make_router(Limits())
    assert type(router).publish is Router.publish
    event = Event(CONN, "s", 1, "MESSAGE_CREATE", 1, b"{}")
    router.publish(event)
    assert router.dropped_unsubscribed == 1


def test_attach_when_the_controller_has_lifecycle_callbacks_adds_one_listener() -> None:
    class Watching(Controller):
        async def on_ready(self, conn: object, info: object) -> None:
            pass

    listeners: list[Any] = []
    WorkerHooks(Watching()).attach(listeners)
    WorkerHooks(Presence()).attach(listeners)
    WorkerHooks().attach(listeners)
    assert len(listeners) == 1
