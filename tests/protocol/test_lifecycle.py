"""Lifecycle names and bodies: a namespace no platform event can have, the JSON every bot reads."""

from __future__ import annotations

import msgspec
import pytest

from shardrunner.protocol import discord, lifecycle, twitch
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

CONN = ConnKey("discord", 1, 3, 8)


def test_lifecycle_names_when_listed_all_start_with_the_prefix_and_none_is_a_platform_event() -> None:
    every = lifecycle.NAMES | lifecycle.SUPERVISOR_NAMES
    assert all(lifecycle.is_lifecycle(n) for n in every)
    assert len(every) == 14
    platform_names = {v for m in (discord, twitch) for v in vars(m).values() if isinstance(v, str)}
    assert not every & platform_names
    assert not lifecycle.is_lifecycle("READY")
    assert not lifecycle.is_lifecycle("PRIVMSG")


def test_lifecycle_body_when_encoded_names_the_connection_and_only_the_fields_it_has() -> None:
    notice = Notice(lifecycle.CHANNEL_MOVED, CONN, {"channel": "c", "from": "twitch:0/2", "to": "twitch:1/2"})
    data = lifecycle.encode(lifecycle.body(notice, 1700000000.5))
    assert msgspec.json.decode(data) == {
        "kind": "shardrunner.channel_moved",
        "conn": "discord:3/8@1",
        "platform": "discord",
        "shard": 3,
        "count": 8,
        "generation": 1,
        "at": 1700000000.5,
        "channel": "c",
        "from": "twitch:0/2",
        "to": "twitch:1/2",
    }
    decoded = lifecycle.decode(data)
    assert (decoded.from_, decoded.to, decoded.conn_key) == ("twitch:0/2", "twitch:1/2", CONN)


def test_lifecycle_body_when_a_notice_has_fields_of_its_own_keeps_them_in_extra() -> None:
    notice = Notice(lifecycle.DISCONNECTED, CONN, {"code": None, "resumable": False, "attempt": 2})
    decoded = lifecycle.decode(lifecycle.encode(lifecycle.body(notice, 0.0)))
    assert (decoded.code, decoded.resumable, decoded.extra) == (None, False, {"attempt": 2})
    with pytest.raises(ValueError, match="without a connection"):
        lifecycle.body(Notice(lifecycle.LEASE_LOST, None, {"block": 1}), 0.0)
