"""What the client hands to the bot."""

from __future__ import annotations

from shardrunner.client import ClientEvent, Gap
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey


def test_client_event_when_data_is_read_decodes_it_once() -> None:
    conn = ConnKey("discord", 0, 1, 4)
    event = ClientEvent(Event(conn, "s", 7, "MESSAGE_CREATE", 42, b'{"content":"hi"}'), redelivered=False)
    assert (event.shard, event.seq, event.guild_id, event.name) == (1, 7, 42, "MESSAGE_CREATE")
    assert (event.conn, event.key, event.session, event.raw, event.redelivered) == (
        conn,
        42,
        "s",
        b'{"content":"hi"}',
        False,
    )
    assert event.data == {"content": "hi"}
    assert event.data is event.data
    assert repr(event) == "<ClientEvent MESSAGE_CREATE conn=discord:1/4 seq=7 key=42>"


def test_client_event_guild_id_when_not_a_discord_guild_is_none() -> None:
    dm = ClientEvent(Event(ConnKey("discord", 0, 0, 1), "s", 1, "MESSAGE_CREATE", None, b"{}"), False)
    chat = ClientEvent(Event(ConnKey("twitch", 0, 0, 1), "s", 1, "PRIVMSG", 42, b"{}"), False)
    assert (dm.guild_id, chat.guild_id, chat.key) == (None, None, 42)


def test_gap_shard_when_asked_is_its_connections_shard() -> None:
    assert Gap(ConnKey("discord", 1, 5, 8), "s", 3, [(1, 3)]).shard == 5
