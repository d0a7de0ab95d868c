"""The login's protocol fed line by line: the hello, the welcome, PING, joins confirmed by
ROOMSTATE, a suspended channel, our PART, RECONNECT, and a refused login in one sentence."""

from __future__ import annotations

import pytest

from shardrunner.gateway.twitch.session import IrcSession, LoginFailed, State
from shardrunner.protocol import irc

WELCOME = [
    f":tmi.twitch.tv {n} bot :{t}"
    for n, t in [("001", "Welcome, GLHF!"), ("002", "Your host is tmi.twitch.tv"), ("375", "-"), ("376", ">")]
]


def feed(s: IrcSession, *lines: str):  # type: ignore[no-untyped-def]
    return [s.feed(irc.parse(line)) for line in lines]


def test_hello_when_logging_in_sends_caps_then_pass_before_nick() -> None:
    s = IrcSession("Bot", "abc")
    assert s.hello() == [
        b"CAP REQ :twitch.tv/membership twitch.tv/tags twitch.tv/commands\r\n",
        b"PASS oauth:abc\r\n",
        b"NICK bot\r\n",
    ]
    assert "abc" not in repr(s)
    anon = IrcSession("justinfan12345", None)
    assert anon.hello()[1:] == [b"PASS SCHMOOPIIE\r\n", b"NICK justinfan12345\r\n"]
    with pytest.raises(ValueError, match="needs a token"):
        IrcSession("bot", None)


def test_hello_when_given_capabilities_requests_those() -> None:
    s = IrcSession("bot", "abc")
    assert (
        s.hello(["twitch.tv/tags", "twitch.tv/commands"])[0]
        == b"CAP REQ :twitch.tv/tags twitch.tv/commands\r\n"
    )


def test_feed_when_the_welcome_ends_is_ready_and_answers_ping_at_once() -> None:
    s = IrcSession("bot", "oauth:abc")
    s.hello()
    outcomes = feed(s, *WELCOME, "PING :tmi.twitch.tv", ":tmi.twitch.tv PONG tmi.twitch.tv :check")
    assert [o.ready for o in outcomes[:4]] == [False, False, False, True]
    assert s.state is State.READY
    assert outcomes[4].send == [b"PONG :tmi.twitch.tv\r\n"]
    assert outcomes[5].pong


def test_feed_when_the_login_is_refused_says_what_to_check() -> None:
    s = IrcSession("bot", "oauth:wrong")
    s.hello()
    with pytest.raises(LoginFailed, match=r"refused the login of bot .*check its OAuth token") as info:
        feed(s, ":tmi.twitch.tv NOTICE * :Login authentication failed")
    assert "wrong" not in str(info.value)
    assert s.state is State.FAILED


def test_join_when_roomstate_comes_confirms_it_and_events_pass_on() -> None:
    s = IrcSession("bot", "oauth:abc")
    s.hello()
    feed(s, *WELCOME)
    assert s.join(["a", "b"]) == b"JOIN #a,#b\r\n"
    out = feed(
        s,
        ":bot!bot@bot.tmi.twitch.tv JOIN #a",
        ":bot.tmi.twitch.tv 353 bot = #a :bot",
        ":bot.tmi.twitch.tv 366 bot #a :End of /NAMES list",
        "@badge-info=;badges=;mod=0 :tmi.twitch.tv USERSTATE #a",
        "@emote-only=0;room-id=1 :tmi.twitch.tv ROOMSTATE #a",
        "@id=m1;room-id=1 :u!u@u.tmi.twitch.tv PRIVMSG #a :hi there",
    )
    assert out[4].joined == ["a"]
    assert s.channels == {"a"}
    assert s.joining == {"b"}
    assert [m.command for o in out for m in o.events] == ["JOIN", "USERSTATE", "ROOMSTATE", "PRIVMSG"]
    assert out[5].events[0].tags["id"] == "m1"


def test_feed_when_a_channel_is_suspended_marks_it_failed() -> None:
    s = IrcSession("bot", "oauth:abc")
    s.hello()
    s.join(["gone"])
    (out,) = feed(s, "@msg-id=msg_channel_suspended :tmi.twitch.tv NOTICE #gone :This channel does not exist")
    assert out.failed == [("gone", "msg_channel_suspended")]
    assert "gone" not in s.joining


def test_feed_when_we_are_parted_forgets_the_channel() -> None:
    s = IrcSession("bot", "oauth:abc")
    s.hello()
    s.join(["a"])
    feed(s, "@room-id=1 :tmi.twitch.tv ROOMSTATE #a")
    (out,) = feed(s, ":bot!bot@bot.tmi.twitch.tv PART #a")
    assert out.parted == ["a"]
    assert s.channels == set()
    (other,) = feed(s, ":someone!someone@someone.tmi.twitch.tv PART #a")
    assert other.parted == []


def test_feed_when_reconnect_comes_reports_it_for_the_connection_or_one_channel() -> None:
    s = IrcSession("bot", "oauth:abc")
    (whole,) = feed(s, ":tmi.twitch.tv RECONNECT")
    (one,) = feed(s, ":tmi.twitch.tv RECONNECT #a")
    assert (whole.reconnect, whole.reconnect_channel) == (True, None)
    assert (one.reconnect, one.reconnect_channel) == (True, "a")
