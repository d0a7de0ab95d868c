"""Bad gateway bytes never crash the Discord shard, and never cost it a valid event.

What arrives is driven where it enters: the transport's receive callback (``_on_message``) of a real
:class:`~shardrunner.gateway.discord.DiscordShard`, alone for the properties (thousands of inputs),
with its state machine and a scripted gateway for the cases that must reconnect and resume, and
through a real socket against the simulator for corrupted streams and oversized messages. The rules
checked (docs/gateway.md, "Bad input"): a corrupted compressed stream or a message over the limit
ends the connection with 4000 (or 1009 from the transport) and the shard resumes; an undecodable
plain payload, an unknown op or a dispatch without a name is dropped and counted
(``decode_errors``); a seq already seen is never delivered again and the shard's seq never goes
back; an unusable HELLO or READY ends the connection.
"""

from __future__ import annotations

import asyncio
import json
import random
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardrunner.clock import RealClock
from shardrunner.gateway.connection import ConnState
from shardrunner.gateway.discord import DiscordShard, ShardOptions
from shardrunner.gateway.discord.receive import Why
from shardrunner.protocol.compression import (
    ZLIB_SUFFIX,
    ZSTD_END_FRAME,
    Compression,
    new_compressor,
    new_decompressor,
)
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import TOKEN, SimFactory, wait_for
from tests.fakes import FakeClock, FakeConnection, FakeTransport, GrantAll
from tests.fuzz.corpus import corpus

CONN = ConnKey("discord", 0, 0, 1)
COMPRESSED = [Compression.ZLIB_STREAM, Compression.ZSTD_STREAM]
LIMIT = 64 * 1024


def _shard(mode: Compression, events: list[Event], limit: int = LIMIT, **kw: Any) -> DiscordShard:
    shard = DiscordShard(
        CONN,
        ShardOptions(token=TOKEN, intents=513, compression=mode, max_message=limit),
        events.append,
        gateway_url="ws://gateway.test",
        identify_queue=kw.pop("queue", GrantAll()),
        transport=kw.pop("transport", FakeTransport()),
        clock=kw.pop("clock", FakeClock(fixed_random=0.5)),
    )
    # What a connection starts with (the shard makes it when it connects; these tests feed the
    # receive callback without one).
    shard._inflate = new_decompressor(mode, limit)
    return shard


def _ready(seq: int = 1, **d: Any) -> dict[str, Any]:
    body = {"v": 10, "session_id": "sess-1", "resume_gateway_url": "ws://resume.test", "guilds": []}
    return {"op": 0, "s": seq, "t": "READY", "d": {**body, **d}}


def _dispatch(seq: int) -> dict[str, Any]:
    return {"op": 0, "s": seq, "t": "MESSAGE_CREATE", "d": {"id": str(seq), "guild_id": "1", "text": "é"}}


class Receiver:
    """A shard's receive side alone, fed as the transport feeds it (one call per message)."""

    def __init__(self, mode: Compression = Compression.NONE, limit: int = LIMIT) -> None:
        self.events: list[Event] = []
        self.shard = _shard(mode, self.events, limit)
        self.compressor = new_compressor(mode)
        self.seqs: list[int] = []

    def message(self, data: bytes) -> None:
        before = self.shard.seq
        self.shard._on_message(data)  # the transport's callback
        assert self.shard.seq >= before, "the resume seq went back"
        self.check()

    def payload(self, payload: Any) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.message(self.compressor.compress(raw))

    def check(self) -> None:
        seqs = [e.seq for e in self.events if e.seq]
        assert seqs == sorted(set(seqs)), f"a seq delivered twice or out of order: {seqs}"
        assert all(e.name for e in self.events), "an event without a name"
        assert self.shard.seq >= max(seqs, default=0)

    @property
    def condemned(self) -> bool:
        """The shard decided to end this connection (and resume)."""
        return self.shard._why is Why.STREAM_ERROR and self.shard._pending_close == 4000


# -- strategies -------------------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
_ids = st.none() | st.integers() | st.sampled_from(["1", "4194304", "", "x", "-1", "1" * 5000]) | _json
_d = _json | st.fixed_dictionaries(
    {},
    optional={
        "guild_id": _ids,
        "id": _ids,
        "unavailable": st.booleans() | _json,
        "session_id": st.text(max_size=5) | _json,
        "resume_gateway_url": st.sampled_from(["ws://resume.test", "", "not a url"]) | _json,
        "guilds": st.lists(st.fixed_dictionaries({}, optional={"id": _ids}), max_size=3) | _json,
        "heartbeat_interval": st.integers() | _json,
    },
)
_names = st.sampled_from(
    ["READY", "RESUMED", "GUILD_CREATE", "GUILD_DELETE", "MESSAGE_CREATE", "SOMETHING_NEW", ""]
)
_payloads = st.fixed_dictionaries(
    {},
    optional={
        "op": st.sampled_from([0, 1, 7, 9, 10, 11, 42, -1]) | st.integers() | _json,
        "s": st.integers(-3, 30) | st.integers() | _json,
        "t": _names | _json,
        "d": _d,
    },
)


@given(st.lists(_payloads, max_size=12))
def test_receive_when_payloads_have_any_shape_never_raises_and_the_seq_never_goes_back(
    payloads: list[dict[str, Any]],
) -> None:
    r = Receiver()
    r.payload(_ready())
    for payload in payloads:
        r.payload(payload)
    assert r.shard.counters.decode_errors + len(r.events) >= 1


# Garbage that is no JSON object at all, and JSON that is no usable payload (no reconnect for any).
_garbage = st.binary(max_size=40).filter(lambda b: not b.lstrip().startswith(b"{")) | st.sampled_from(
    [
        b'{"op":0,"s":2,"t":"X","d":{"a":"\xff\xfe"}}',  # invalid UTF-8 inside d
        b'{"op":"0","s":2,"t":"X","d":{}}',  # op as a string
        b'{"op":0,"s":2.5,"t":"X","d":{}}',  # a float seq
        b'{"op":0,"s":99999999999999999999999,"t":"X","d":{}}',  # a seq over 64 bits
        b'{"op":0,"s":2,"d":{}}',  # no name: dropped
        b'{"op":42,"d":{}}',  # an unknown op
        b'{"op":0,"s":2,"t":"X","d":' + b"[" * 2000 + b"]" * 2000 + b"}",  # nested too deep
        b'{"op":0,"s":1,"t":"MESSAGE_CREATE","d":{"replayed":true}}',  # a seq already seen
        b'{"op":0,"s":-7,"t":"MESSAGE_CREATE","d":{}}',  # a negative seq
        b'{"op":11,"s":10000,"t":"MESSAGE_CREATE","d":null}',  # s and t on a non-dispatch
    ]
)


@given(st.lists(st.tuples(st.booleans(), _garbage), max_size=20))
def test_receive_when_plain_garbage_comes_between_events_delivers_every_valid_one_once(
    mix: list[tuple[bool, bytes]],
) -> None:
    r = Receiver()
    r.payload(_ready())
    seq = 1
    for valid, garbage in mix:
        if valid:
            seq += 1
            r.payload(_dispatch(seq))
        else:
            r.message(garbage)
        r.payload(_dispatch(seq))  # the gateway repeats the last one: never delivered twice
    assert not r.condemned, "plain garbage never costs the connection"
    assert [e.seq for e in r.events] == list(range(1, seq + 1))
    assert r.shard.seq == seq


@pytest.mark.parametrize("mode", list(Compression))
@settings(max_examples=100)
@given(messages=st.lists(st.binary(max_size=200), max_size=8))
def test_receive_when_messages_are_random_bytes_never_raises(
    mode: Compression, messages: list[bytes]
) -> None:
    r = Receiver(mode)
    for data in messages:
        r.message(data)
    if mode is not Compression.NONE and r.shard.counters.decode_errors:
        assert r.condemned, "a broken stream ends the connection"


# -- compressed streams: corrupted, split, truncated --------------------------------------------
def _stream(mode: Compression, n: int) -> list[bytes]:
    c = new_compressor(mode)
    return [c.compress(json.dumps(_ready() if i == 1 else _dispatch(i)).encode()) for i in range(1, n + 1)]


def _mutate(mode: Compression, messages: list[bytes], kind: str, at: int, k: int) -> tuple[list[bytes], bool]:
    """``messages`` with message ``at`` broken as ``kind`` says; True if nothing is lost by it."""
    m = messages[at]
    k = 1 + k % (len(m) - 1)  # a cut inside the message, never all of it (TCP loses no message)
    if kind == "split":  # one payload in two WebSocket messages: zlib buffers to the suffix
        return [*messages[:at], m[:k], m[k:], *messages[at + 1 :]], mode is Compression.ZLIB_STREAM
    if kind == "truncate":
        return [*messages[:at], m[:k], *messages[at + 1 :]], False
    if kind == "no_suffix":
        return [*messages[:at], m.removesuffix(ZLIB_SUFFIX), *messages[at + 1 :]], False
    if kind == "flip":
        return [*messages[:at], m[:k] + bytes([m[k] ^ 85]) + m[k + 1 :], *messages[at + 1 :]], False
    garbage = random.Random(k).randbytes(1 + k % 16)  # after a frame's end (zstd), or a stray block
    return [*messages[:at], m + ZSTD_END_FRAME + garbage, *messages[at + 1 :]], False


@pytest.mark.parametrize("mode", COMPRESSED)
@given(
    kind=st.sampled_from(["split", "truncate", "no_suffix", "flip", "frame_garbage"]),
    at=st.integers(1, 5),
    k=st.integers(0, 400),
)
def test_receive_when_a_compressed_stream_breaks_delivers_what_came_before_and_resumes(
    mode: Compression, kind: str, at: int, k: int
) -> None:
    messages = _stream(mode, 7)  # the last one is never broken: a cut one would only wait for more
    broken, harmless = _mutate(mode, messages, kind, at, k)
    r = Receiver(mode)
    for data in broken:
        r.message(data)
    seqs = [e.seq for e in r.events]
    assert seqs[:at] == list(range(1, at + 1)), "what came before the break is delivered"
    originals = {1: _ready()["d"], **{s: _dispatch(s)["d"] for s in range(2, 8)}}
    assert all(json.loads(e.data) == originals[e.seq] for e in r.events[:at])
    if harmless:
        assert seqs == list(range(1, 8))
        assert not r.condemned
    elif len(seqs) < 7:
        assert r.condemned, "a stream that stopped making sense ends the connection"


@pytest.mark.parametrize("mode", COMPRESSED)
def test_receive_when_a_message_inflates_beyond_the_limit_ends_the_connection(mode: Compression) -> None:
    r = Receiver(mode, limit=LIMIT)
    r.payload(_ready())
    bomb = b'{"op":0,"s":2,"t":"X","d":"' + b"0" * (4 * LIMIT) + b'"}'  # compresses to a few KiB
    data = r.compressor.compress(bomb)
    assert len(data) < LIMIT // 4
    r.message(data)
    assert r.condemned
    assert r.shard.counters.decode_errors == 1
    assert [e.seq for e in r.events] == [1]
    r.payload(_dispatch(2))
    assert [e.seq for e in r.events] == [1], "nothing more is read of a condemned connection"


def test_receive_when_zlib_never_sends_its_suffix_buffers_at_most_the_limit() -> None:
    r = Receiver(Compression.ZLIB_STREAM, limit=LIMIT)
    r.payload(_ready())
    chunk = zlib.compress(b"x" * 100)[:-4] * 64  # no message ever ends in 00 00 ff ff
    for _ in range(LIMIT // len(chunk) + 2):
        r.message(chunk)
        if r.condemned:
            break
    assert r.condemned
    assert r.shard.counters.decode_errors == 1


@pytest.mark.parametrize("name", [n for n, _ in corpus("discord_payloads")])
def test_receive_when_the_corpus_payload_comes_never_raises(name: str) -> None:
    data = dict(corpus("discord_payloads"))[name]
    for mode in list(Compression):
        r = Receiver(mode)
        r.payload(_ready())
        r.payload(data)  # the live stream's compressor carries it: only the payload is bad
        after = min(r.shard.seq + 1, 2**63 - 1)  # a gateway that took the seq to its end has no next
        r.payload(_dispatch(after))
        if not r.condemned and after > r.events[-2].seq:
            assert r.events[-1].seq == after, f"{name} ({mode.value}): the next valid event was lost"


# -- the state machine: reconnect, resume, lose nothing --------------------------------------------
@dataclass
class Rig:
    shard: DiscordShard
    clock: FakeClock
    transport: FakeTransport
    queue: GrantAll
    events: list[Event]

    async def connection(self, n: int) -> FakeConnection:
        for _ in range(400):
            if len(self.transport.connections) >= n:
                return self.transport.connections[n - 1]
            await self.clock.advance(0.5)
        raise AssertionError(f"no connection #{n}")

    async def send(self, conn: FakeConnection, payload: Any, compressor: Any = None) -> None:
        raw = payload if isinstance(payload, bytes) else msgspec.json.encode(payload)
        conn.on_message(compressor.compress(raw) if compressor else raw)
        await self.clock.settle()


@pytest.fixture
async def rigs() -> AsyncIterator[Any]:
    made: list[tuple[DiscordShard, asyncio.Task[None], FakeClock]] = []

    def make(mode: Compression = Compression.NONE) -> Rig:
        clock, transport, queue, events = FakeClock(fixed_random=0.5), FakeTransport(), GrantAll(), []
        shard = _shard(mode, events, queue=queue, transport=transport, clock=clock)
        made.append((shard, asyncio.ensure_future(shard.run()), clock))
        return Rig(shard, clock, transport, queue, events)

    yield make
    for shard, task, clock in made:
        if not task.done():
            await shard.close()
            await clock.advance(1)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize(
    ("target", "mode"), [("discord_zlib", Compression.ZLIB_STREAM), ("discord_zstd", Compression.ZSTD_STREAM)]
)
async def test_shard_when_a_corpus_stream_breaks_resumes_and_loses_nothing(
    rigs: Any, target: str, mode: Compression
) -> None:
    for name, data in corpus(target):
        rig: Rig = rigs(mode)
        conn = await rig.connection(1)
        c = new_compressor(mode)
        await rig.send(conn, {"op": 10, "d": {"heartbeat_interval": 41250}}, c)
        await rig.send(conn, _ready(), c)
        await rig.send(conn, _dispatch(2), c)
        await rig.send(conn, data)  # as it is: a broken message, or a valid one out of its stream
        await rig.send(conn, _dispatch(3), c)
        delivered = rig.shard.seq
        assert conn.client_close_code in (None, 4000), name
        if conn.client_close_code is None:
            continue  # a message the stream could take (a split one): nothing to resume
        assert rig.shard.counters.decode_errors >= 1, name
        conn2 = await rig.connection(2)
        c2 = new_compressor(mode)
        await rig.send(conn2, {"op": 10, "d": {"heartbeat_interval": 41250}}, c2)
        assert conn2.sent[0] == {"op": 6, "d": {"token": TOKEN, "session_id": "sess-1", "seq": delivered}}, (
            name
        )
        for seq in range(delivered + 1, 5):
            await rig.send(conn2, _dispatch(seq), c2)
        await rig.send(conn2, {"op": 0, "s": 5, "t": "RESUMED", "d": {}}, c2)
        assert [e.seq for e in rig.events] == [1, 2, 3, 4, 5], name
        assert rig.shard.state is ConnState.READY


@pytest.mark.parametrize(
    "hello",
    [
        {"op": 10, "d": {}},
        {"op": 10, "d": {"heartbeat_interval": 0}},
        {"op": 10, "d": {"heartbeat_interval": -41250}},
        {"op": 10, "d": {"heartbeat_interval": 10**12}},
        {"op": 10, "d": {"heartbeat_interval": "41250"}},
        {"op": 10, "d": {"heartbeat_interval": 41250.5}},
        {"op": 10, "d": None},
    ],
)
async def test_shard_when_hello_is_unusable_reconnects_and_then_identifies(rigs: Any, hello: Any) -> None:
    rig: Rig = rigs()
    conn = await rig.connection(1)
    await rig.send(conn, hello)
    assert conn.client_close_code == 4000
    assert rig.shard.counters.decode_errors == 1
    assert conn.sent == [], "no heartbeat, no IDENTIFY on a HELLO it cannot use"
    conn2 = await rig.connection(2)
    await rig.send(conn2, {"op": 10, "d": {"heartbeat_interval": 41250}})
    assert conn2.ops() == [2]


@pytest.mark.parametrize(
    "ready",
    [
        _ready(session_id=None),
        {**_ready(), "d": {"v": 10, "resume_gateway_url": "ws://resume.test"}},
        {**_ready(), "d": {"v": 10, "session_id": "sess-1"}},
        _ready(guilds="all of them"),
        {**_ready(), "d": None},
    ],
)
async def test_shard_when_ready_is_unusable_gives_the_grant_back_and_identifies_again(
    rigs: Any, ready: Any
) -> None:
    rig: Rig = rigs()
    conn = await rig.connection(1)
    await rig.send(conn, {"op": 10, "d": {"heartbeat_interval": 41250}})
    await rig.send(conn, ready)
    assert conn.client_close_code == 4000
    assert rig.queue.released == [(CONN, False)], "the identify grant is given back, not held"
    assert rig.shard.session_id is None
    assert rig.events == []
    conn2 = await rig.connection(2)
    await rig.send(conn2, {"op": 10, "d": {"heartbeat_interval": 41250}})
    assert conn2.ops() == [2]
    await rig.send(conn2, _ready())
    assert rig.shard.state is ConnState.READY


async def test_shard_when_ready_lists_odd_guild_ids_keeps_the_session_and_counts_them(rigs: Any) -> None:
    rig: Rig = rigs()
    conn = await rig.connection(1)
    await rig.send(conn, {"op": 10, "d": {"heartbeat_interval": 41250}})
    guilds = [{"id": "4194304"}, {"id": "abc"}, {"id": "1" * 5000}, {"id": "8388608"}, {}]
    await rig.send(conn, _ready(guilds=guilds))
    assert rig.shard.state is ConnState.READY
    assert conn.client_close_code is None
    assert rig.shard.counters.keys == {4194304, 8388608}
    assert rig.shard.counters.key_errors == 3, "a word, a number too long, none"


# -- a real socket: the simulator sends what breaks the stream --------------------------------------
async def test_shard_against_sim_when_the_stream_breaks_or_a_message_is_too_large_resumes_without_loss(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=1, rate=200, guilds_per_shard=2, heartbeat_interval_ms=1000)
    events: list[Event] = []
    shard = DiscordShard(
        CONN,
        ShardOptions(
            token=TOKEN,
            intents=513,
            compression=Compression.ZSTD_STREAM,
            backoff_base=0.05,
            backoff_cap=0.2,
            max_message=LIMIT,
        ),
        events.append,
        gateway_url=sim.gateway_url,
        identify_queue=GrantAll(),
        clock=RealClock(random.Random(3)),
    )
    task = asyncio.ensure_future(shard.run())
    try:
        for resumes, inject in enumerate(
            [
                lambda w: w.send_garbage(bytes(range(64))),  # a zstd frame that is none
                lambda w: w.transport.write(_frame(0x2, b"\0" * (LIMIT + 1))),  # one frame too large
                lambda w: w.transport.write(  # a fragmented message too large in total
                    _frame(0x2, b"\0" * (LIMIT // 2), fin=False) + _frame(0x0, b"\0" * (LIMIT // 2 + 1))
                ),
            ]
        ):
            await wait_for(lambda: shard.state is ConnState.READY, 10, "ready")
            start = shard.counters.events_in
            await wait_for(lambda s=start: shard.counters.events_in >= s + 20, 10, "events")
            (conn,) = [c for c in sim.connections if not c.closing]
            inject(conn.writer)
            await wait_for(lambda r=resumes: shard.counters.resumes == r + 1, 10, f"resume #{resumes + 1}")
        sim.config = sim.config.replace(rate=0)
        session = sim.sessions[shard.session_id or ""]
        await wait_for(lambda: shard.seq == session.last_seq, 10, "caught up")
        assert [e.seq for e in events] == list(range(1, session.last_seq + 1)), "lost or repeated"
        assert shard.counters.identifies == 1
        # The garbage; picows goes on parsing after a frame over its limit (until it disconnects),
        # and what it reads inside that frame's payload breaks the stream too.
        assert 1 <= shard.counters.decode_errors <= 2
    finally:
        await shard.close()
        await asyncio.gather(task, return_exceptions=True)


def _frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        return head + bytes([n]) + payload
    if n < 65536:
        return head + bytes([126]) + n.to_bytes(2, "big") + payload
    return head + bytes([127]) + n.to_bytes(8, "big") + payload
