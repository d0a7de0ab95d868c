"""Connecting: CAP, PASS/NICK, the welcome, anonymous logins, failures, 421, PING/PONG."""

from __future__ import annotations

import pytest

from shardrunner.protocol import irc
from shardrunner.protocol.twitch import WELCOME
from tests.sim.twitch.helpers import RawIrc, admin, running


@pytest.mark.parametrize("transport", ["tcp", "ws"])
async def test_welcome_is_exact_over_both_transports(transport: str) -> None:
    async with running() as sim:
        c = await (RawIrc.tcp(sim) if transport == "tcp" else RawIrc.ws(sim))
        await c.send("CAP REQ :twitch.tv/tags twitch.tv/commands", "PASS oauth:secret", "NICK Bar")
        gus = await c.wait(lambda m: m.command == "GLOBALUSERSTATE")
        assert irc.format(c.lines[0]) == b":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands\r\n"
        assert c.raw[1:8] == [f":tmi.twitch.tv {n} bar :{t}".encode() for n, t in WELCOME]
        assert gus.tags["display-name"] == "Bar"
        assert set(gus.tags) == {
            "badge-info",
            "badges",
            "color",
            "display-name",
            "emote-sets",
            "user-id",
            "user-type",
        }
        status, stats = await admin(sim, "GET", "/_sim/stats")
        assert status == 200
        assert stats["logins"][0]["ok"] is True
        assert "secret" not in str(stats)
        await c.aclose()


async def test_without_caps_there_is_no_globaluserstate_and_no_tags() -> None:
    async with running(channels=("chan0",)) as sim:
        c = await RawIrc.tcp(sim)
        await c.login(caps=False)
        await c.send("JOIN #chan0")
        await c.wait(lambda m: m.command == "366")
        await c.send("PING :probe")
        await c.wait(lambda m: m.command == "PONG")
        assert "GLOBALUSERSTATE" not in c.commands()
        assert "USERSTATE" not in c.commands()
        assert all(not m.tags for m in c.lines)
        await c.aclose()


async def test_unknown_cap_is_naked() -> None:
    async with running() as sim:
        c = await RawIrc.tcp(sim)
        await c.send("CAP REQ :twitch.tv/tags twitch.tv/Tags")
        nak = await c.wait(lambda m: m.params[1:2] == ["NAK"])
        assert nak.params == ["*", "NAK", "twitch.tv/Tags"]
        assert c.lines[0].params == ["*", "ACK", "twitch.tv/tags"]
        await c.aclose()


async def test_nick_before_pass_is_improperly_formatted_and_closes() -> None:
    async with running() as sim:
        c = await RawIrc.tcp(sim)
        await c.send("NICK bar")
        m = await c.wait(lambda m: m.command == "NOTICE")
        assert m.params == ["*", "Improperly formatted auth"]
        await c.wait_closed()


async def test_a_bad_token_fails_and_closes() -> None:
    async with running(accounts={"bar": "good"}) as sim:
        c = await RawIrc.ws(sim)
        await c.send("PASS oauth:bad", "NICK bar")
        m = await c.wait(lambda m: m.command == "NOTICE")
        assert m.params == ["*", "Login authentication failed"]
        await c.wait_closed()
        ok = await RawIrc.tcp(sim)
        await ok.login(token="oauth:good")
        await ok.aclose()
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [(e["ok"], e["note"]) for e in stats["logins"]] == [
            (False, "authentication failed"),
            (True, ""),
        ]
        assert "good" not in str(stats)


async def test_login_failure_fault_fails_the_next_login_only() -> None:
    async with running() as sim:
        assert (await admin(sim, "POST", "/_sim/fault", {"kind": "login_failure", "account": "bar"}))[
            0
        ] == 200
        c = await RawIrc.tcp(sim)
        await c.send("PASS oauth:x", "NICK bar")
        await c.wait(lambda m: m.trailing == "Login authentication failed")
        await c.wait_closed()
        c2 = await RawIrc.tcp(sim)
        await c2.login()
        await c2.aclose()


async def test_anonymous_reader_logs_in_with_any_pass_and_cannot_send() -> None:
    async with running(channels=("chan0",)) as sim:
        c = await RawIrc.tcp(sim)
        await c.login("justinfan12345", token="SCHMOOPIIE")
        await c.join("chan0")
        await c.send("PRIVMSG #chan0 :hi")
        await c.send("PING :sync")
        await c.wait(lambda m: m.command == "PONG")
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert stats["messages"][0]["reason"] == "anonymous"
        assert c.commands().count("USERSTATE") == 1  # the JOIN's; no own-message USERSTATE
        await c.aclose()


async def test_unknown_command_after_login_is_421() -> None:
    async with running() as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.send("WHOIS bar")
        m = await c.wait(lambda m: m.command == "421")
        assert c.raw[c.lines.index(m)] == b":tmi.twitch.tv 421 bar WHOIS :Unknown command"
        await c.aclose()


async def test_client_ping_gets_pong_and_server_pings_with_a_deadline() -> None:
    async with running(ping_interval=0.2, pong_timeout=0.3) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.send("PING :hello")
        pong = await c.wait(lambda m: m.command == "PONG")
        assert c.raw[c.lines.index(pong)] == b":tmi.twitch.tv PONG tmi.twitch.tv :hello"
        ping = await c.wait(lambda m: m.command == "PING")
        assert c.raw[c.lines.index(ping)] == b"PING :tmi.twitch.tv"
        await c.send("PONG :tmi.twitch.tv")
        # Answered: the connection stays; then unanswered: closed after the deadline.
        await c.wait(lambda m: m.command == "PING", start=c.lines.index(ping) + 1)
        await c.wait_closed(timeout=3)
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [v["kind"] for v in stats["violations"]] == ["pong_timeout"]


async def test_several_lines_in_one_websocket_frame_and_the_frame_end_ends_a_line() -> None:
    # A WebSocket frame holds whole lines: tmi.js sends each line as a frame without CRLF (and works
    # against Twitch), so a line cut across two frames is two lines.
    async with running() as sim:
        c = await RawIrc.ws(sim)
        assert c._ws is not None
        await c._ws.send_str("CAP REQ :twitch.tv/tags\r\nPASS oauth:x\r\nNICK bar")
        await c.wait(lambda m: m.command == "376")
        await c._ws.send_str("PI")
        await c._ws.send_str("NG :half\r\n")
        await c.wait(lambda m: m.command == "421" and m.params[1] == "PI")
        await c.wait(lambda m: m.command == "421" and m.params[1] == "NG")
        await c._ws.send_str("PING :whole")
        await c.wait(lambda m: m.command == "PONG" and m.params[-1] == "whole")
        await c.aclose()
