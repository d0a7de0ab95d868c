"""Discord's platform: discovery against a fake /gateway/bot, the plan, and the worker-side platform."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from shardrunner.gateway.discord.options import PartConfig
from shardrunner.gateway.discord.platform import DiscordPlan, DiscordPlatform, discover, discover_from
from shardrunner.gateway.discord.rest import SessionStartLimit
from shardrunner.gateway.discord.shard import DiscordShard
from shardrunner.gateway.platform import PlatformError, StatefulPlatform, load_platform
from shardrunner.protocol.discord import shard_for_guild
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.fakes import GrantAll

TOKEN = "MTEwMA.secret-part.do-not-log"

Answer = Callable[[web.Request], web.Response]


@pytest.fixture
async def api() -> AsyncIterator[Callable[[Answer], Awaitable[str]]]:
    """A fake Discord API on a free port: ``url = await api(answer)``."""
    runners: list[web.AppRunner] = []

    async def start(answer: Answer) -> str:
        async def handler(request: web.Request) -> web.Response:
            return answer(request)

        app = web.Application()
        app.router.add_get("/api/v10/gateway/bot", handler)
        runner = web.AppRunner(app)
        runners.append(runner)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/api/v10"

    yield start
    for runner in runners:
        await runner.cleanup()


def gateway_bot(
    remaining: int = 1000, total: int = 1000, max_concurrency: int = 1, shards: int = 2
) -> Answer:
    def answer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bot {TOKEN}":
            return web.json_response({"message": "401: Unauthorized"}, status=401)
        return web.json_response(
            {
                "url": "wss://gateway.test",
                "shards": shards,
                "session_start_limit": {
                    "total": total,
                    "remaining": remaining,
                    "reset_after": 3_600_000,
                    "max_concurrency": max_concurrency,
                },
            }
        )

    return answer


def discover_args(api_url: str, **changes: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "api_url": api_url,
        "token": TOKEN,
        "shards": "auto",
        "max_concurrency": None,
        "identify_window": 5.0,
        "intents": 513,
        "compression": "zlib-stream",
        "large_threshold": 250,
    }
    args.update(changes)
    return args


def plan(num_shards: int = 8, max_concurrency: int = 4, generation: int = 0, **limit: int) -> DiscordPlan:
    start = {"total": 1000, "remaining": 1000, "reset_after": 60_000, "max_concurrency": max_concurrency}
    start.update(limit)
    return DiscordPlan(
        token=TOKEN,
        gateway_url="wss://gateway.test",
        num_shards=num_shards,
        max_concurrency=max_concurrency,
        identify_window=5.0,
        session_start_limit=SessionStartLimit(**start),
        intents=513,
        compression="zlib-stream",
        large_threshold=250,
        generation=generation,
    )


async def test_discover_when_shards_are_auto_takes_discords_count_and_concurrency(api: Any) -> None:
    url = await api(gateway_bot(max_concurrency=16, shards=3))
    found = await discover(**discover_args(url))
    assert (found.name, found.num_shards, found.max_concurrency) == ("discord", 3, 16)
    assert found.gateway_url == "wss://gateway.test"
    assert found.conns == [ConnKey("discord", 0, s, 3) for s in range(3)]
    assert [(x.name, x.buckets, x.window) for x in found.limits] == [("discord.identify", 16, 5.0)]


async def test_discover_when_shards_and_concurrency_are_set_keeps_them_and_the_generation(api: Any) -> None:
    url = await api(gateway_bot(max_concurrency=16, shards=3))
    found = await discover(**discover_args(url, shards=8, max_concurrency=2, generation=1))
    assert found.conns == [ConnKey("discord", 1, s, 8) for s in range(8)]
    assert found.max_concurrency == 2


async def test_discover_from_when_given_the_cluster_settings_reads_its_discord_section(api: Any) -> None:
    from shardrunner.gateway.platform import DISCOVERIES
    from shardrunner.settings import load_settings

    url = await api(gateway_bot(max_concurrency=4, shards=3))
    settings = load_settings(
        {
            "api_url": url,
            "token": TOKEN,
            "shards": "6",
            "compression": "zstd-stream",
            "large_threshold": "100",
            "state_cache": "true",
            "state_cache_log": "9",
        },
        {},
        None,
    )
    assert DISCOVERIES["discord"] == "shardrunner.gateway.discord.platform:discover_from"
    found = await discover_from(settings)
    assert found.conns == [ConnKey("discord", 0, s, 6) for s in range(6)]
    assert found.max_concurrency == 4
    config = PartConfig.decode(found.part_config())
    assert (config.compression, config.large_threshold) == ("zstd-stream", 100)
    assert (config.state_cache, config.state_cache_log) == (True, 9)
    resized = PartConfig.decode(found.resize(12).part_config())
    assert (resized.state_cache, resized.state_cache_log) == (True, 9), "a reshard's new set keeps it"


async def test_discover_when_the_token_is_refused_says_so_in_one_sentence(api: Any) -> None:
    url = await api(gateway_bot())
    refused = r"Discord rejected the token \(401 from GET /gateway/bot\)"
    with pytest.raises(PlatformError, match=refused) as info:
        await discover(**discover_args(url, token="wrong"))
    assert "wrong" not in str(info.value)


async def test_discover_when_the_api_is_unreachable_names_the_url() -> None:
    with pytest.raises(PlatformError, match=r"cannot reach http://127\.0\.0\.1:9/api/v10/gateway/bot"):
        await discover(**discover_args("http://127.0.0.1:9/api/v10"))


def test_plan_when_starts_are_below_need_refuses_with_the_reset_time() -> None:
    with pytest.raises(PlatformError) as info:
        plan(remaining=3).check_starts(8)
    assert str(info.value) == (
        "Discord allows 3 more session starts today (session_start_limit.remaining) but 8 shards must "
        "identify; wait 60 s for the limit to reset, or start fewer shards"
    )


def test_plan_when_starts_run_low_warns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    plan(remaining=10).check_starts(8)
    assert "only 10 session starts left today (of 1000); 8 shards will identify now" in caplog.text
    caplog.clear()
    plan().check_starts(8)
    assert caplog.text == ""


def test_plan_when_two_sets_run_shares_the_tokens_buckets() -> None:
    old, new = plan(4, max_concurrency=2), plan(8, max_concurrency=2, generation=1)
    assert old.bucket_of(ConnKey("discord", 0, 3, 4)) == ("discord.identify", 1)
    assert new.bucket_of(ConnKey("discord", 1, 3, 8)) == ("discord.identify", 1)
    assert not set(old.conns) & set(new.conns), "two sets of shard 0..3 never collide"


def test_plan_never_shows_the_token() -> None:
    p = plan()
    shown = f"{p!r} {p.describe()} {PartConfig.decode(p.part_config())!r}"
    assert TOKEN not in shown
    assert p.describe()["num_shards"] == 8
    assert PartConfig.decode(p.part_config()).token == TOKEN


def test_platform_when_loaded_by_name_builds_shards_that_resume_their_sessions() -> None:
    platform = load_platform("discord")
    assert isinstance(platform, DiscordPlatform)
    conns = [ConnKey("discord", 0, s, 4) for s in (0, 1)]
    snapshot = SessionSnapshot(conn=conns[1], session_id="s", seq=7, resume_url="wss://r", keys=[5])
    shards = platform.build(conns, plan(4).part_config(), {conns[1]: snapshot}, lambda e: None, GrantAll())
    assert [s.conn for s in shards] == conns
    assert all(isinstance(s, DiscordShard) for s in shards)
    assert (shards[0].session_id, shards[1].session_id, shards[1].seq) == (None, "s", 7)
    assert shards[1].counters.keys == {5}


def test_platform_owner_maps_a_guild_to_the_newest_set_that_holds_it() -> None:
    platform = DiscordPlatform()
    guild = 1 << 22 | 5 << 22  # shard_for_guild looks at the bits above 22
    old = [ConnKey("discord", 0, s, 4) for s in range(4)]
    new = [ConnKey("discord", 1, s, 8) for s in range(8)]
    assert platform.owner(guild, old) == old[shard_for_guild(guild, 4)]
    assert platform.owner(guild, old + new) == new[shard_for_guild(guild, 8)]
    assert platform.owner(None, old) is None
    with pytest.raises(ValueError, match="invalid literal"):
        platform.owner("not-a-guild", old)


def test_platform_when_state_cache_is_on_keeps_each_shards_state_after_its_sink_took_the_event() -> None:
    platform = DiscordPlatform()
    conns = [ConnKey("discord", 0, s, 4) for s in (0, 1)]
    config = PartConfig.decode(plan(4).part_config())
    config.state_cache = True
    delivered: list[Event] = []
    shards = platform.build(conns, config.encode(), {}, delivered.append, GrantAll())
    assert isinstance(platform, StatefulPlatform)
    ready = Event(conns[0], "s", 1, "READY", None, b'{"guilds":[]}')
    create = Event(conns[0], "s", 2, "GUILD_CREATE", 5 << 22, b'{"id":"20971520"}')
    for event in (ready, create):
        shards[0].sink(event)
    assert delivered == [ready, create]
    assert platform.state_events(conns[0]) == [ready, create]
    assert platform.state_mark(conns[0]) == ("s", 2)
    assert (platform.state_events(conns[1]), platform.state_mark(conns[1])) == ([], ("", 0)), "kept, no READY"
    rebuilt = platform.build(conns[:1], config.encode(), {}, delivered.append, GrantAll())[0]
    assert platform.state_mark(rebuilt.conn) == ("s", 2), "a shard rebuilt after a crash keeps its cache"


def test_platform_when_state_cache_is_off_hands_the_sink_on_untouched_and_keeps_nothing() -> None:
    platform = DiscordPlatform()
    conn = ConnKey("discord", 0, 0, 4)
    sink = [].append
    (shard,) = platform.build([conn], plan(4).part_config(), {}, sink, GrantAll())
    assert shard.sink is sink
    assert (platform.state_events(conn), platform.state_mark(conn)) == ([], None)
