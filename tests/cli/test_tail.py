"""``shardrunner tail``: event names checked at once, lines and JSON for every event, RESUMED too."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shardrunner.cli import main
from shardrunner.cli.tail import event_names, format_event
from shardrunner.client import ClientEvent
from shardrunner.protocol.discord import DISPATCH_EVENTS
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.discord.entities import SUPPORTED_EVENTS


def client_event(name: str, raw: bytes, guild_id: int | None = None) -> ClientEvent:
    return ClientEvent(Event(ConnKey("discord", 1, 3, 8), "abc123", 42, name, guild_id, raw), False)


def test_tail_when_an_event_name_is_unknown_fails_at_once_listing_the_known(tmp_path: Path) -> None:
    started = time.monotonic()
    result = CliRunner().invoke(main, ["tail", "--run-dir", str(tmp_path), "--events", "MESSAGE_CREATE,NOPE"])
    assert result.exit_code == 2
    assert "Invalid value for --events: unknown event 'NOPE'; known: " in result.output
    assert "GUILD_CREATE" in result.output
    assert "RESUMED" in result.output
    assert time.monotonic() - started < 5


def test_event_names_when_known_in_any_case_gives_them_upper_case() -> None:
    assert event_names("message_create, Resumed") == ["MESSAGE_CREATE", "RESUMED"]
    assert event_names(None) is None
    assert event_names(" , ") is None
    with pytest.raises(click.BadParameter):
        event_names("GUILD_CRATE")


def test_dispatch_events_when_compared_with_the_simulator_holds_every_name_it_sends() -> None:
    assert SUPPORTED_EVENTS | {"READY", "RESUMED", "GUILD_CREATE", "GUILD_MEMBERS_CHUNK"} <= DISPATCH_EVENTS


def test_format_event_when_json_prints_conn_session_and_the_body() -> None:
    line = format_event(client_event("MESSAGE_CREATE", b'{"id":"1"}', 99), as_json=True)
    assert json.loads(line) == {
        "conn": "discord:3/8@1",
        "shard": 3,
        "session": "abc123",
        "seq": 42,
        "t": "MESSAGE_CREATE",
        "guild_id": 99,
        "key": 99,
        "d": {"id": "1"},
    }


def test_format_event_when_twitch_prints_the_channel_the_user_and_the_text() -> None:
    from shardrunner.client import ClientEvent
    from shardrunner.protocol.envelope import Event
    from shardrunner.protocol.keys import ConnKey

    body = b"@id=x;room-id=1 :ann!ann@ann.tmi.twitch.tv PRIVMSG #chan :hi all"
    event = ClientEvent(Event(ConnKey("twitch", 0, 1, 4), "s", 7, "PRIVMSG", "chan", body), False)
    assert format_event(event, False).endswith("PRIVMSG      #chan ann: hi all")
    shown = json.loads(format_event(event, True))
    assert shown["key"] == "chan"
    assert shown["d"]["tags"] == {"id": "x", "room-id": "1"}
    assert event_names("privmsg,USERNOTICE") == ["PRIVMSG", "USERNOTICE"]


@pytest.mark.parametrize("raw", [b"", b"null", b"{}"])
def test_format_event_when_resumed_has_no_body_prints_valid_lines(raw: bytes) -> None:
    event = client_event("RESUMED", raw)
    decoded = json.loads(format_event(event, as_json=True))
    assert decoded["t"] == "RESUMED"
    assert decoded["d"] == json.loads(raw or b"null")
    line = format_event(event, as_json=False)
    assert line.split() == ["discord:3/8@1", "seq", "42", "RESUMED", "guild", "-", str(len(raw)), "B"]


def test_tail_when_no_cluster_runs_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["tail", "--run-dir", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert f"no cluster is running in {tmp_path / 'none'}" in result.output
