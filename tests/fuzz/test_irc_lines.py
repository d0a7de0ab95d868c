"""Bad IRC lines never crash a Twitch connection, and never cost it a valid line.

The codec (``protocol/irc.py``): :func:`~shardrunner.protocol.irc.parse` raises only ``IrcError``;
the hot path's :func:`~shardrunner.protocol.irc.peek_chat` finds what ``parse`` would or leaves the
line to it; :class:`~shardrunner.protocol.irc.LineBuffer` with ``drop_long`` skips a line over the
limit and keeps every other, however the stream is cut. The session (``gateway/twitch/session.py``)
takes any parsed line. And through a real socket: the simulator sends the corpus's lines to a
reading connection in the middle of its traffic (it counts what it dropped, ``decode_errors``, and
hands on every generated message once, through the corpus's RECONNECT too) and to a sending
connection (which still gets Twitch's answer to each send).
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardrunner.gateway.connection import ConnState
from shardrunner.gateway.twitch.reader import TwitchReader
from shardrunner.gateway.twitch.sender import TwitchSender
from shardrunner.gateway.twitch.session import IrcSession, LoginFailed
from shardrunner.gateway.twitch.session import State as SessionState
from shardrunner.protocol import irc
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.fuzz.corpus import corpus
from tests.gateway.twitch.helpers import CountingBudgets, limit_account, until
from tests.sim.twitch.helpers import admin, running

LIMIT = irc.MAX_TAGS_BYTES + 2 + irc.MAX_LINE_BYTES

# -- lines: structured, then broken ---------------------------------------------------------------
_word = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0 "), min_size=1, max_size=8)
_value = st.text(st.characters(codec="utf-8"), max_size=10)
_keys = st.sampled_from(["id", "room-id", "msg-id", "display-name", "mod", "", "x"]) | _word
_tags = st.lists(st.tuples(_keys, st.none() | _value), max_size=4)
_commands = st.sampled_from(
    [
        "PRIVMSG",
        "USERNOTICE",
        "NOTICE",
        "PING",
        "PONG",
        "RECONNECT",
        "ROOMSTATE",
        "PART",
        "376",
        "353",
        "FOO",
        "",
    ]
)
_noise = st.sampled_from(
    ["", " ", "  ", "\t", "\u00a0", "\\", "\\s", "\0", "\r", ":", "#", ";", "=", ";id=z"]
)


@st.composite
def _lines(draw: st.DrawFn) -> bytes:
    parts: list[str] = []
    tags = draw(_tags)
    if tags:
        parts.append("@" + ";".join(k if v is None else f"{k}={v}" for k, v in tags) + draw(_noise) + " ")
    if draw(st.booleans()):
        parts.append(":" + draw(st.sampled_from(["u!u@u.tmi.twitch.tv", "tmi.twitch.tv", ""]) | _word) + " ")
    parts.append(draw(_commands) + draw(_noise))
    for _ in range(draw(st.integers(0, 2))):
        parts.append(" " + draw(st.sampled_from(["#chan", "#", "*", "bot"]) | _word) + draw(_noise))
    if draw(st.booleans()):
        parts.append(" :" + draw(_value))
    raw = "".join(parts).encode()
    if draw(st.booleans()):  # a broken byte anywhere (invalid UTF-8 or not)
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=2)) + raw[at:]
    return raw


_any_line = _lines() | st.binary(max_size=60)


@given(_any_line)
def test_parse_when_a_line_is_anything_raises_only_irc_error(line: bytes) -> None:
    for text in (line, line.decode("utf-8", "replace")):
        try:
            message = irc.parse(text)
        except irc.IrcError:
            continue
        assert message.command
        assert all("\r" not in p and "\n" not in p and "\0" not in p for p in message.params)


def _agrees(line: bytes) -> None:
    peeked = irc.peek_chat(line)
    if peeked is None:
        return
    message = irc.parse(line)  # must not raise: the hot path handed this line on
    assert (message.command, message.channel, message.tags.get("id") or None) == (
        peeked[0],
        "#" + peeked[1],
        peeked[2],
    ), line


@given(_any_line)
def test_peek_chat_when_it_finds_a_chat_line_finds_what_parse_reads(line: bytes) -> None:
    _agrees(line)


_params = st.lists(_word.filter(lambda w: not w.startswith(":")), max_size=3)


@given(
    st.dictionaries(
        st.from_regex(r"[a-z0-9+/.-]{1,8}", fullmatch=True),
        st.text(st.characters(codec="utf-8", exclude_characters="\0"), max_size=10),
        max_size=4,
    ),
    st.none() | _word,
    st.sampled_from(["PRIVMSG", "USERNOTICE", "NOTICE", "001"]),
    _params,
    st.none() | st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=12),
)
def test_format_when_parsed_again_gives_the_same_message(
    tags: dict[str, str], prefix: str | None, command: str, params: list[str], trailing: str | None
) -> None:
    if prefix is not None and prefix.startswith(":"):
        prefix = "p" + prefix
    message = irc.Message(tags, prefix, command, params + ([trailing] if trailing is not None else []))
    line = irc.format(message)
    assert irc.parse(line) == message
    _agrees(line.removesuffix(b"\r\n"))


def test_format_when_a_tag_cannot_be_sent_refuses_it() -> None:
    for tags in ({"a": "nul\0"}, {"": "x"}, {"a=b": "x"}, {"a;b": "x"}, {"a b": "x"}, {"\x1f": "x"}):
        with pytest.raises(irc.IrcError, match="a tag cannot be sent"):
            irc.format("PRIVMSG", ["#chan", "hi"], tags=tags)


@given(_value)
def test_unescape_tag_when_given_an_escaped_value_gives_it_back(value: str) -> None:
    assert irc.unescape_tag(irc.escape_tag(value)) == value


@given(
    st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")) | st.just(b"x" * 70), max_size=10),
    st.lists(st.integers(0, 400), max_size=6),
    st.booleans(),
)
def test_line_buffer_when_the_stream_is_cut_anywhere_keeps_every_line_within_the_limit(
    lines: list[bytes], cuts: list[int], crlf: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    stream = b"".join(line + end for line in lines)
    buf = irc.LineBuffer(limit=64, drop_long=True)
    got: list[bytes] = []
    last = 0
    for cut in [*sorted(c % (len(stream) + 1) for c in cuts), len(stream)]:
        got += buf.feed(stream[last:cut])
        last = cut
    kept = [line.removesuffix(b"\r") if not crlf else line for line in lines]
    assert got == [line for line in kept if line and len(line) <= 64]
    assert buf.dropped == sum(len(line) > 64 for line in kept)
    assert buf.pending == 0


def test_line_buffer_when_a_line_never_ends_holds_at_most_the_limit() -> None:
    buf = irc.LineBuffer(limit=64, drop_long=True)
    for _ in range(100):
        assert buf.feed(b"y" * 50) == []
        assert buf.pending <= 64 + 50
    assert buf.feed(b"tail of it\r\nPING :a\r\n") == [b"PING :a"], "the rest of the long line goes too"
    assert buf.dropped == 1


@pytest.mark.parametrize("state", [SessionState.LOGGING_IN, SessionState.READY])
@given(_any_line)
def test_session_when_it_reads_any_line_never_raises_but_for_a_refused_login(
    state: SessionState, line: bytes
) -> None:
    try:
        message = irc.parse(line)
    except irc.IrcError:
        return
    session = IrcSession("bot", "token")
    session.state = state
    session.joining.add("chan")
    try:
        outcome = session.feed(message)
    except LoginFailed:
        assert state is SessionState.LOGGING_IN, "only the login can fail"
        return
    for reply in outcome.send:
        irc.parse(reply)


@pytest.mark.parametrize("name", [n for n, _ in corpus("irc_lines")])
def test_corpus_when_its_lines_are_read_never_raise(name: str) -> None:
    data = dict(corpus("irc_lines"))[name]
    _agrees(data.removesuffix(b"\n").removesuffix(b"\r"))  # the whole input as one line too
    buf = irc.LineBuffer(drop_long=True)
    session = IrcSession("bot", "token")
    session.state = SessionState.READY
    for line in [*buf.feed(data), *buf.feed(b"\r\n")]:
        _agrees(line)
        with contextlib.suppress(irc.IrcError):
            session.feed(irc.parse(line))


# -- a real socket: the simulator sends the corpus to a reading connection -------------------------
def _unreadable(data: bytes) -> int:
    """How many lines of ``data`` a reading connection drops (too long, or refused by parse)."""
    buf = irc.LineBuffer(drop_long=True)
    lines = buf.feed(data if data.endswith(b"\n") else data + b"\r\n")
    bad = buf.dropped
    for line in lines:
        if irc.peek_chat(line) is None:
            try:
                irc.parse(line)
            except irc.IrcError:
                bad += 1
    return bad


async def test_reader_when_twitch_sends_bad_lines_counts_them_and_hands_on_every_message_once() -> None:
    channels = ["chan0", "chan1"]
    async with running(channels=tuple(channels), rate=200.0) as sim:
        events: list[Event] = []
        reader = TwitchReader(
            ConnKey("twitch", 0, 0, 1),
            login="bot",
            token="abc",
            channels=channels,
            url=f"irc://127.0.0.1:{sim.irc_port}",
            sink=events.append,
            budgets=CountingBudgets(),
        )
        task = asyncio.ensure_future(reader.run())
        try:
            await until(lambda: reader.counters.key_count == 2, 10, "two channels joined")
            await until(lambda: len(events) >= 50, 10, "traffic")
            session = reader.session_id
            (conn,) = sim.connections
            for _, data in corpus("irc_lines"):
                conn.send(data if data.endswith(b"\n") else data + b"\r\n")
                await asyncio.sleep(0)
            bad = sum(_unreadable(data) for _, data in corpus("irc_lines"))
            await until(lambda: reader.counters.decode_errors >= bad, 10, "the bad lines counted")
            # The corpus's RECONNECT: the reader makes its replacement before the break.
            await until(lambda: reader.counters.reconnects == 1, 10, "the replacement")
            count = len(events)
            await until(lambda: len(events) >= count + 50, 10, "traffic on the replacement")
            status, _ = await admin(sim, "POST", "/_sim/config", {"rate": 0})
            assert status == 200
            generated = {i for name in channels for i in sim.channels[name].ids}
            seen = lambda: [irc.parse(e.data).tags.get("id") for e in events]  # noqa: E731
            await until(lambda: generated <= set(seen()), 10, "every generated message handed on")
            ids = [i for i in seen() if i]
            assert len(ids) == len(set(ids)), "each once"
            assert reader.counters.decode_errors == bad, "every bad line counted, no good one"
            assert reader.session_id != session
            assert reader.state is ConnState.READY
            assert all(irc.parse(e.data) for e in events), "every event's line reads"
        finally:
            await reader.close()
            await asyncio.wait_for(task, 10)


async def test_reader_when_closed_during_a_replacement_stops_without_waiting_for_its_joins() -> None:
    async with running(channels=("chan0",), rate=50.0) as sim:
        reader = TwitchReader(
            ConnKey("twitch", 0, 0, 1),
            login="bot",
            token="abc",
            channels=["chan0", "ghost"],  # Twitch never answers a JOIN of a channel that does not exist
            url=f"irc://127.0.0.1:{sim.irc_port}",
            sink=lambda e: None,
            budgets=CountingBudgets(),
        )
        task = asyncio.ensure_future(reader.run())
        await until(lambda: reader.counters.key_count == 1, 10, "chan0 joined")
        (conn,) = sim.connections
        conn.send(b":tmi.twitch.tv RECONNECT\r\n")
        await until(lambda: reader.counters.identifies == 2, 10, "the replacement logged in")
        loop = asyncio.get_running_loop()
        started = loop.time()
        await reader.close()
        await asyncio.wait_for(task, 10)
        assert loop.time() - started < 5, "the close waited for the replacement's joins"


async def test_sender_when_twitch_sends_bad_lines_reads_on_and_gets_every_answer() -> None:
    async with running(channels=("chan0",)) as sim:
        sender = TwitchSender(
            ConnKey("twitch", 0, 1, 2),
            login="bot",
            token="abc",
            url=f"irc://127.0.0.1:{sim.irc_port}",  # the corpus is not all UTF-8: no WebSocket text
            sink=lambda e: None,
            budgets=CountingBudgets(),
            limits=limit_account(sim, "bot", channel_interval=0.05),  # short: three sends, no wait
        )
        task = asyncio.ensure_future(sender.run())
        try:
            await until(lambda: sender.state is ConnState.READY, 10, "logged in")
            (conn,) = sim.connections
            bad = 0
            for _, data in corpus("irc_lines"):
                conn.send(data if data.endswith(b"\n") else data + b"\r\n")
                bad += _unreadable(data)
            await until(lambda: sender.counters.decode_errors >= bad, 10, "the bad lines counted")
            for i in range(3):
                answer = await sender.send_command(
                    {"channel": "chan0", "text": f"still here {i}"}, timeout=10
                )
                assert answer["id"], answer
            assert sender.counters.decode_errors == bad
        finally:
            await sender.close()
            await asyncio.wait_for(task, 10)
