"""Faults and the admin API of the Twitch simulator, and its command line."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from pathlib import Path

from click.testing import CliRunner

from shardrunner.cli import main
from shardrunner.settings import SIM_TWITCH, SIM_TWITCH_SECTIONS, resolve
from shardrunner.sim.twitch.config import TwitchSimConfig, load_twitch_config, twitch_config
from tests.sim.twitch.helpers import RawIrc, admin, running


async def test_reconnect_then_close_after_the_grace() -> None:
    async with running(channels=("chan",), reconnect_grace=0.3) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "reconnect", "account": "bar"})
        assert (status, body["applied"]) == (200, 1)
        r = await c.wait(lambda m: m.command == "RECONNECT")
        seen = time.monotonic()
        assert c.raw[c.lines.index(r)] == b":tmi.twitch.tv RECONNECT"
        await c.wait_closed()
        assert time.monotonic() - seen >= 0.25


async def test_drop_aborts_without_close_and_stall_holds_lines() -> None:
    async with running(channels=("chan",)) as sim:
        c = await RawIrc.ws(sim)
        await c.login()
        conn = next(iter(sim.connections))
        await admin(sim, "POST", "/_sim/fault", {"kind": "stall", "connection": conn.id, "seconds": 0.4})
        start = time.monotonic()
        await c.send("PING :x")
        await c.wait(lambda m: m.command == "PONG")
        assert time.monotonic() - start >= 0.3
        await admin(sim, "POST", "/_sim/fault", {"kind": "drop", "connection": conn.id})
        await c.wait_closed()
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert stats["closes"][-1]["dropped"] is True


async def test_no_pong_stops_answering_client_pings() -> None:
    async with running() as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await admin(sim, "POST", "/_sim/fault", {"kind": "no_pong", "account": "bar", "seconds": 30})
        await c.send("PING :a", "WHOIS x")
        await c.wait(lambda m: m.command == "421")
        assert "PONG" not in c.commands()


async def test_server_change_reconnects_the_channel_and_parts_it() -> None:
    async with running(channels=("chan", "other"), reconnect_grace=0.1) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("chan")
        await c.join("other")
        status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "server_change", "channel": "#chan"})
        assert (status, body) == (200, {"applied": 1})
        await c.wait(lambda m: m.command == "RECONNECT" and m.params == ["#chan"])
        await c.wait(lambda m: m.command == "PART" and m.params == ["#chan"])
        assert sorted(sim.account("bar").channels) == ["other"]
        await c.join("chan")


async def test_raid_sends_its_usernotice_then_a_burst_of_chat_in_the_channel() -> None:
    async with running(channels=("chan", "other")) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("chan")
        start = len(c.lines)
        raid = {"kind": "raid", "channel": "#chan", "lines": 200, "seconds": 0.05}
        assert await admin(sim, "POST", "/_sim/fault", raid) == (200, {"applied": 1})
        notice = await c.wait(lambda m: m.command == "USERNOTICE", start=start)
        assert (notice.tags["msg-id"], notice.params[0]) == ("raid", "#chan")
        assert "msg-param-viewerCount" in notice.tags
        await c.wait(lambda m: len(c.lines) - start == 201, start=start)  # no other traffic: rate 0
        got = [m.tags["id"] for m in c.lines[start:] if "id" in m.tags]
        assert got == sim.channels["chan"].ids, "the USERNOTICE first, then the burst, in order"
        assert got[0] == notice.tags["id"]
        assert sim.channels["other"].ids == []
        status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "raid", "channel": "nope"})
        assert (status, body) == (400, {"error": "no channel 'nope'"})


async def test_server_change_by_notice_names_the_other_server_and_parts_it() -> None:
    async with running(channels=("chan", "other"), reconnect_grace=0.1) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("chan")
        await c.join("other")
        body = {"kind": "server_change", "channel": "chan", "how": "notice", "server": "ws://127.0.0.2:9/"}
        assert await admin(sim, "POST", "/_sim/fault", body) == (200, {"applied": 1})
        n = await c.wait(lambda m: m.command == "NOTICE")
        assert (n.tags["msg-id"], n.params[0], n.params[-1].split()[-1]) == (
            "server_change",
            "#chan",
            "ws://127.0.0.2:9/",
        )
        await c.wait(lambda m: m.command == "PART" and m.params == ["#chan"])
        assert "RECONNECT" not in c.commands()
        assert sorted(sim.account("bar").channels) == ["other"]
        # Without a server given, the simulator names its own WebSocket URL.
        await c.join("chan")
        start = len(c.lines)
        del body["server"]
        await admin(sim, "POST", "/_sim/fault", body)
        n = await c.wait(lambda m: m.command == "NOTICE", start=start)
        assert n.params[-1].split()[-1] == sim.ws_url
        assert [f["how"] for f in sim.stats.faults] == ["notice", "notice"]
        assert (await admin(sim, "POST", "/_sim/fault", {**body, "how": "shout"}))[0] == 400


async def test_random_server_change_picks_a_channel_of_the_connection() -> None:
    async with running(channels=("chan", "other"), reconnect_grace=0.05) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("chan")
        sim.config = dataclasses.replace(sim.config, fault_rate=60_000.0, faults=("server_change",))
        m = await c.wait(lambda m: m.command == "RECONNECT")
        sim.config = dataclasses.replace(sim.config, fault_rate=0.0)
        assert m.params == ["#chan"]
        assert sim.stats.faults[0]["kind"] == "server_change"
        assert sim.stats.faults[0]["channel"] == "chan"


async def test_slow_consumer_is_killed_without_close() -> None:
    async with running(channels=("chan",), rate=20000.0, slow_kill=200) as sim:
        c = await RawIrc.tcp(sim, rcvbuf=4096)
        await c.send("PASS oauth:x", "NICK bar", "JOIN #chan")
        deadline = time.monotonic() + 20
        while not sim.stats.violations and time.monotonic() < deadline:
            await c.send("PING :x")  # the client never reads
            await asyncio.sleep(0.05)
        assert [v["kind"] for v in sim.stats.violations] == ["slow_consumer"]
        assert sim.stats.closes[-1]["dropped"] is True


async def test_admin_config_and_channels() -> None:
    async with running(channels=("chan",)) as sim:
        status, body = await admin(sim, "POST", "/_sim/config", {"rate": 5, "ping_interval": 60})
        assert status == 200
        assert (body["rate"], body["ping_interval"]) == (5, 60)
        assert (await admin(sim, "POST", "/_sim/config", {"port": 1}))[0] == 400
        assert (await admin(sim, "POST", "/_sim/config", {"rate": "fast"}))[0] == 400
        assert (await admin(sim, "POST", "/_sim/fault", {"kind": "nope"}))[0] == 400
        status, body = await admin(sim, "POST", "/_sim/channels", {"add": ["#New"], "suspend": ["chan"]})
        assert (status, body) == (200, {"added": ["new"], "channels": 2})
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("new")
        await c.send("JOIN #chan")
        n = await c.wait(lambda m: m.command == "NOTICE")
        assert n.tags["msg-id"] == "msg_channel_suspended"


def test_settings_parse_accounts_channels_and_moderators() -> None:
    resolved = resolve(
        SIM_TWITCH_SECTIONS,
        {"accounts": "Bot:oauth:tok,other:t2", "channels": "3", "moderator": "bot:#Chan1", "verified": "bot"},
        {},
        None,
        config_env=None,
    )
    cfg = twitch_config(resolved)
    assert cfg.accounts == {"bot": "tok", "other": "t2"}
    assert cfg.channels == ("chan0", "chan1", "chan2")
    assert cfg.is_moderator("bot", "chan1")
    assert cfg.limits("bot").join_count == 2000
    assert cfg.limits("other").join_count == 20


def test_cli_help_names_every_option_and_hides_no_secret() -> None:
    result = CliRunner().invoke(main, ["sim", "twitch", "--help"])
    assert result.exit_code == 0, result.output
    for option in ("--irc-port", "--accounts", "--channels", "--moderator", "--verified", "--ping-interval"):
        assert option in result.output
    bad = CliRunner().invoke(main, ["sim", "twitch", "--faults", "explode"])
    assert bad.exit_code == 2
    assert "unknown kind 'explode'" in bad.output


EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "sim-twitch.toml"


def test_example_config_when_read_names_every_setting_and_gives_the_defaults() -> None:
    text = EXAMPLE.read_text()
    keys = set(re.findall(r"^#? ?([a-z-]+) = ", text, flags=re.MULTILINE))
    assert keys == {s.name.replace("_", "-") for s in SIM_TWITCH.settings}
    config, resolved = load_twitch_config({}, {}, str(EXAMPLE))
    assert config == TwitchSimConfig()
    assert resolved.sources["rate"] == f"config file {EXAMPLE}"
    assert resolved.values["log_level"] == "info"
