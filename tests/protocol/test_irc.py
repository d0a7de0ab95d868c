"""The IRC codec: parse, format, escapes, broken lines, sizes and line splitting."""

from __future__ import annotations

import random
import string

import pytest

from shardrunner.protocol import irc
from shardrunner.protocol.irc import IrcError, LineBuffer, Message

PRIVMSG = (
    "@badge-info=subscriber/8;badges=subscriber/6,premium/1;color=#FF4500;display-name=Viewer_42;"
    "emotes=25:0-4,12-16/1902:6-10;first-msg=0;flags=;id=b34ccfc7-4977-403a-8a94-33c6bac34fb8;mod=0;"
    "room-id=141981764;subscriber=1;tmi-sent-ts=1642715756806;turbo=0;user-id=12345678;user-type= "
    ":viewer_42!viewer_42@viewer_42.tmi.twitch.tv PRIVMSG #chan0 :Kappa Keepo Kappa"
)


def test_parse_reads_a_twitch_privmsg() -> None:
    m = irc.parse(PRIVMSG.encode() + b"\r\n")
    assert m.command == "PRIVMSG"
    assert m.params == ["#chan0", "Kappa Keepo Kappa"]
    assert m.prefix == "viewer_42!viewer_42@viewer_42.tmi.twitch.tv"
    assert m.nick == "viewer_42"
    assert m.channel == "#chan0"
    assert m.trailing == "Kappa Keepo Kappa"
    assert m.tags["id"] == "b34ccfc7-4977-403a-8a94-33c6bac34fb8"
    assert m.tags["emotes"] == "25:0-4,12-16/1902:6-10"
    assert m.tags["flags"] == ""
    assert m.tags["user-type"] == ""
    assert len(m.tags) == 15


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("a\\:b", "a;b"),
        ("a\\sb", "a b"),
        ("a\\\\b", "a\\b"),
        ("a\\rb", "a\rb"),
        ("a\\nb", "a\nb"),
        ("ab\\", "ab"),
        ("a\\xb", "axb"),
        ("\\\\\\s\\:", "\\ ;"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_every_escape_of_a_tag_value_is_undone(raw: str, value: str) -> None:
    assert irc.parse(f"@k={raw} :tmi.twitch.tv NOTICE * :x").tags["k"] == value
    assert irc.unescape_tag(raw) == value


def test_a_key_without_a_value_equals_an_empty_value_and_order_does_not_matter() -> None:
    a = irc.parse("@b=2;a;c= :tmi.twitch.tv USERSTATE #x")
    b = irc.parse("@c=;a=;b=2 :tmi.twitch.tv USERSTATE #x")
    assert a == b
    assert a.tags == {"a": "", "b": "2", "c": ""}


def test_welcome_and_numerics_parse() -> None:
    m = irc.parse(":tmi.twitch.tv 001 bar :Welcome, GLHF!")
    assert (m.prefix, m.command, m.params) == ("tmi.twitch.tv", "001", ["bar", "Welcome, GLHF!"])
    m = irc.parse(":bar.tmi.twitch.tv 353 bar = #chan :bar")
    assert m.params == ["bar", "=", "#chan", "bar"]
    assert irc.parse("PING :tmi.twitch.tv").params == ["tmi.twitch.tv"]
    assert irc.parse("RECONNECT").params == []
    assert irc.parse(":tmi.twitch.tv CAP * ACK :twitch.tv/tags twitch.tv/commands").params[-1] == (
        "twitch.tv/tags twitch.tv/commands"
    )
    assert irc.parse("PRIVMSG #a ::)").params == ["#a", ":)"]
    assert irc.parse("PRIVMSG #a :").params == ["#a", ""]
    assert irc.parse("JOIN #a,#b\n").params == ["#a,#b"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "no command"),
        ("   ", "no command"),
        ("@a=b", "tags without a command"),
        ("@a=b ", "no command"),
        (":prefix", "a prefix without a command"),
        (": PRIVMSG #a :x", "an empty prefix"),
        (":p ", "no command"),
        ("@=x :p PRIVMSG #a :x", "a tag without a key"),
        ("PRIV-MSG #a", "not a command"),
        ("12 #a", "not a command"),
        ("PRIVMSG #a :x\rPRIVMSG #b :y", "a line break"),
        ("PRIVMSG #a :x\0", "NUL"),
        (b"PRIVMSG #a :\xff\xfe", "not UTF-8"),
    ],
)
def test_a_broken_line_raises_irc_error_with_a_reason(line: str | bytes, reason: str) -> None:
    with pytest.raises(IrcError, match=reason):
        irc.parse(line)


def test_parse_of_a_non_line_raises_irc_error_only() -> None:
    with pytest.raises(IrcError):
        irc.parse(42)  # type: ignore[arg-type]
    assert issubclass(IrcError, ValueError)


def test_random_garbage_raises_only_irc_error() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "@:;= \\é"
    outcomes = {"parsed": 0, "refused": 0}
    for _ in range(3000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        try:
            irc.parse(line)
            outcomes["parsed"] += 1
        except IrcError:
            outcomes["refused"] += 1
    assert outcomes["parsed"] > 0
    assert outcomes["refused"] > 0


def test_strict_parse_enforces_the_sizes() -> None:
    tags = "@k=" + "v" * (irc.MAX_TAGS_BYTES - 2)
    irc.parse(tags + " PING :x", strict=True)
    with pytest.raises(IrcError, match="tags are over"):
        irc.parse(tags + "v PING :x", strict=True)
    body = "PRIVMSG #a :" + "x" * (irc.MAX_LINE_BYTES - 2 - 12)
    irc.parse(body, strict=True)
    with pytest.raises(IrcError, match="over 512"):
        irc.parse(body + "x", strict=True)
    irc.parse(body + "x")  # lenient by default


def test_format_writes_a_line_and_escapes_tags() -> None:
    line = irc.format(
        "PRIVMSG", ["#a", "hi there"], tags={"id": "1", "k": "a; b\\c", "e": ""}, prefix="u!u@u.tmi.twitch.tv"
    )
    assert line == b"@id=1;k=a\\:\\sb\\\\c;e= :u!u@u.tmi.twitch.tv PRIVMSG #a :hi there\r\n"
    assert irc.format("PING", ["tmi.twitch.tv"]) == b"PING tmi.twitch.tv\r\n"
    assert irc.format("PRIVMSG", ["#a", ""]) == b"PRIVMSG #a :\r\n"
    assert irc.format("PRIVMSG", ["#a", ":)"]) == b"PRIVMSG #a ::)\r\n"
    assert irc.format("RECONNECT") == b"RECONNECT\r\n"
    assert (
        irc.format("004", ["bar", "-"], prefix="tmi.twitch.tv", trailing=True)
        == b":tmi.twitch.tv 004 bar :-\r\n"
    )
    assert irc.format(Message({"a": "b"}, None, "PONG", ["x"])) == b"@a=b PONG x\r\n"


@pytest.mark.parametrize("params", [["a b", "x"], ["", "x"], [":a", "x"], ["#a", "x\r\ny"]])
def test_format_refuses_what_cannot_be_sent(params: list[str]) -> None:
    with pytest.raises(IrcError):
        irc.format("PRIVMSG", params)


def _random_message(rng: random.Random) -> Message:
    value_chars = "ab;: \\\r\n=xé@"
    word = string.ascii_letters + string.digits + "#-_/!@.,=é"
    tags = {
        "".join(rng.choice(string.ascii_lowercase + "-/.") for _ in range(rng.randint(1, 8))): "".join(
            rng.choice(value_chars) for _ in range(rng.randint(0, 10))
        )
        for _ in range(rng.randint(0, 6))
    }
    prefix = rng.choice([None, "tmi.twitch.tv", "u!u@u.tmi.twitch.tv"])
    command = rng.choice(["PRIVMSG", "USERNOTICE", "001", "353", "PING", "CAP"])
    params = ["".join(rng.choice(word) for _ in range(rng.randint(1, 8))) for _ in range(rng.randint(0, 3))]
    if params and rng.random() < 0.7:
        params[-1] = "".join(rng.choice(word + " :") for _ in range(rng.randint(0, 20)))
    return Message(tags, prefix, command, params)


def test_parse_of_format_is_the_message() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        m = _random_message(rng)
        assert irc.parse(irc.format(m)) == m, m


def test_escape_then_unescape_is_identity() -> None:
    rng = random.Random(3)
    for _ in range(2000):
        v = "".join(rng.choice("ab;: \\\r\nxs") for _ in range(rng.randint(0, 12)))
        assert irc.unescape_tag(irc.escape_tag(v)) == v


def test_line_buffer_keeps_a_partial_tail() -> None:
    buf = LineBuffer()
    assert buf.feed(b"PING :a\r\nPRIVMSG #a :hel") == [b"PING :a"]
    assert buf.pending == len(b"PRIVMSG #a :hel")
    assert buf.feed(b"lo\r") == []
    assert buf.feed(b"\nPONG\n\r\n") == [b"PRIVMSG #a :hello", b"PONG"]
    assert buf.pending == 0


def test_line_buffer_refuses_an_endless_line() -> None:
    buf = LineBuffer(limit=16)
    with pytest.raises(IrcError, match="over 16"):
        buf.feed(b"x" * 17)
    with pytest.raises(IrcError, match="over 16"):
        buf.feed(b"y" * 17 + b"\r\n")


def test_split_lines_of_a_frame() -> None:
    assert irc.split_lines(b"A\r\nB\r\n") == [b"A", b"B"]
    assert irc.split_lines("A\r\nB") == [b"A", b"B"]
    assert irc.split_lines(b"") == []


@pytest.mark.parametrize(
    ("line", "peeked"),
    [
        (
            b"@badges=;id=abc-1;room-id=7 :u!u@u.tmi.twitch.tv PRIVMSG #chan :hello :) there",
            ("PRIVMSG", "chan", "abc-1"),
        ),
        (b"@id=x2;msg-id=sub :tmi.twitch.tv USERNOTICE #c2 :yay", ("USERNOTICE", "c2", "x2")),
        (b"@msg-id=raid;room-id=1 :tmi.twitch.tv USERNOTICE #c3", ("USERNOTICE", "c3", None)),
        (b"@room-id=1;target-msg-id=9 :tmi.twitch.tv CLEARMSG #c :x", None),
        (b":u!u@u.tmi.twitch.tv PRIVMSG #chan :no tags", None),
        (b"@id=1 :tmi.twitch.tv NOTICE #chan :hi", None),
        (b"PING :tmi.twitch.tv", None),
        (b"@id=1 :u PRIVMSG notachannel :x", None),
    ],
)
def test_peek_chat_when_a_chat_line_finds_its_command_channel_and_id_without_parsing(
    line: bytes, peeked: tuple[str, str, str | None] | None
) -> None:
    assert irc.peek_chat(line) == peeked
    if peeked is not None:
        message = irc.parse(line)
        assert (message.command, message.channel, message.tags.get("id")) == (
            peeked[0],
            "#" + peeked[1],
            peeked[2],
        )


def test_line_buffer_when_a_frame_ends_with_crlf_splits_it_as_the_slow_path_would() -> None:
    for data in (b"a\r\nb\r\n", b"a\nb\r\n", b"a\r\n\r\nb\r\n", b"\r\n"):
        fast = LineBuffer().feed(data)
        slow = LineBuffer()
        assert fast == slow.feed(data[:1]) + slow.feed(data[1:]), data
    with pytest.raises(IrcError):
        LineBuffer(limit=3).feed(b"abcd\r\n")
