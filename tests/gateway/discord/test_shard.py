"""The Discord shard's state machine, driven by a fake clock and a fake transport."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import msgspec
import pytest

from shardrunner.gateway.connection import CommandRejected, ConnState, NotReady
from shardrunner.gateway.discord import DiscordShard, PayloadTooLarge, ShardFatalError, ShardOptions
from shardrunner.gateway.gate import ConnectGate
from shardrunner.protocol import lifecycle
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from tests.fakes import FakeClock, FakeConnection, FakeTransport, GrantAll

TOKEN = "MTEwMA.secret-part.do-not-log"
GATEWAY = "ws://gateway.test"
CONN = ConnKey("discord", 0, 0, 1)


@dataclass
class Rig:
    shard: DiscordShard
    clock: FakeClock
    transport: FakeTransport
    queue: GrantAll
    events: list[Event]
    states: list[ConnState] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def connection(self, n: int) -> FakeConnection:
        """Wait (in virtual time) until the n-th connection (1-based) is open."""
        for _ in range(200):
            if len(self.transport.connections) >= n:
                return self.transport.connections[n - 1]
            await self.clock.advance(0.5)
        raise AssertionError(f"no connection #{n}; attempts: {self.transport.attempts}")

    async def ready(self, conn: FakeConnection, guilds: list[int] | None = None) -> None:
        conn.hello()
        await self.clock.settle()
        conn.ready(guilds=guilds)
        await self.clock.settle()
        assert self.shard.state is ConnState.READY


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FakeClock(fixed_random=0.5)
    transport = FakeTransport()
    queue = GrantAll()
    events: list[Event] = []
    shard = DiscordShard(
        CONN,
        ShardOptions(token=TOKEN, intents=513, compression=Compression.NONE),
        events.append,
        gateway_url=GATEWAY,
        identify_queue=queue,
        transport=transport,
        clock=clock,
    )
    r = Rig(shard, clock, transport, queue, events)
    shard.add_state_listener(lambda old, new: r.states.append(new))
    r.task = asyncio.ensure_future(shard.run())
    yield r
    if not r.task.done():
        await shard.close()
        await clock.advance(1)
        r.task.cancel()
    await asyncio.gather(r.task, return_exceptions=True)


async def test_shard_when_hello_arrives_identifies_through_the_queue(rig: Rig) -> None:
    conn = await rig.connection(1)
    assert conn.url == GATEWAY + "/?v=10&encoding=json"
    assert conn.sent == []
    conn.hello()
    await rig.clock.settle()
    assert rig.queue.acquired == [CONN]
    identify = conn.sent[0]
    assert identify["op"] == 2
    assert identify["d"]["token"] == TOKEN
    assert identify["d"]["intents"] == 513
    assert identify["d"]["shard"] == [0, 1]
    assert rig.shard.state is ConnState.IDENTIFYING


async def test_shard_when_ready_arrives_is_ready_and_releases_the_queue(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn, guilds=[5 << 22, 6 << 22])
    assert rig.queue.released == [(CONN, True)]
    assert rig.shard.session_id == "sess-1"
    assert rig.shard.resume_url == "ws://resume.test"
    assert rig.shard.counters.key_count == 2
    assert rig.shard.counters.identifies == 1
    assert rig.states[:4] == [ConnState.QUEUED, ConnState.CONNECTING, ConnState.IDENTIFYING, ConnState.READY]
    assert rig.events[0].name == "READY"
    assert rig.events[0].seq == 1


async def test_heartbeat_when_hello_arrives_beats_first_after_interval_times_random_then_every_interval(
    rig: Rig,
) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    await rig.clock.advance(19.9)  # 40 s x random() = 0.5 -> first beat at 20 s
    assert 1 not in conn.ops()
    await rig.clock.advance(0.2)
    assert conn.ops().count(1) == 1
    assert conn.sent[-1] == {"op": 1, "d": 1}
    conn.deliver({"op": 11, "d": None})
    await rig.clock.advance(39.8)
    assert conn.ops().count(1) == 1
    await rig.clock.advance(0.4)
    assert conn.ops().count(1) == 2
    assert rig.shard.counters.heartbeat_latency is not None


async def test_heartbeat_when_gateway_sends_op1_beats_at_once(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "MESSAGE_CREATE", {"id": "1", "guild_id": "9"})
    conn.deliver({"op": 1, "d": None})
    assert conn.sent[-1] == {"op": 1, "d": 2}


async def test_heartbeat_when_no_ack_arrives_closes_resumably_and_resumes(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    await rig.clock.advance(20.1)  # first beat, never acknowledged
    await rig.clock.advance(40)
    assert conn.client_close_code not in (None, 1000, 1001)
    conn2 = await rig.connection(2)
    assert conn2.url.startswith("ws://resume.test/?")
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0] == {"op": 6, "d": {"token": TOKEN, "session_id": "sess-1", "seq": 1}}
    assert rig.queue.acquired == [CONN], "a resume never goes through the identify queue"


async def test_shard_when_op7_arrives_reconnects_at_once_and_resumes(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "TYPING_START", {"guild_id": "9"})
    conn.deliver({"op": 7, "d": None})
    await rig.clock.settle()
    assert conn.client_close_code == 4000
    assert len(rig.transport.connections) == 2, "op 7 reconnects without waiting"
    conn2 = rig.transport.last
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6
    assert conn2.sent[0]["d"]["seq"] == 2
    conn2.dispatch(3, "MESSAGE_CREATE", {"guild_id": "9"})
    conn2.deliver({"op": 0, "s": 4, "t": "RESUMED", "d": {}})
    await rig.clock.settle()
    assert rig.shard.state is ConnState.READY
    assert rig.shard.counters.resumes == 1
    assert [e.seq for e in rig.events] == [1, 2, 3, 4]


@pytest.mark.parametrize(("resumable", "next_op"), [(True, 6), (False, 2)])
async def test_shard_when_op9_arrives_waits_1_to_5_s_then_resumes_or_identifies(
    rig: Rig, resumable: bool, next_op: int
) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.deliver({"op": 9, "d": resumable})
    await rig.clock.settle()
    assert conn.client_close_code == (4000 if resumable else 1000)
    await rig.clock.advance(0.99)
    assert len(rig.transport.connections) == 1, "waits at least 1 s"
    await rig.clock.advance(2.1)  # fixed random 0.5 -> 1 + 4 x 0.5 = 3 s
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == next_op
    assert (rig.shard.session_id is not None) is resumable


async def test_shard_when_identify_gets_op9_releases_the_queue_and_identifies_again(rig: Rig) -> None:
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    conn.deliver({"op": 9, "d": False})
    await rig.clock.settle()
    assert rig.queue.released == [(CONN, False)]
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 2
    assert rig.queue.acquired == [CONN, CONN]


@pytest.mark.parametrize("code", [4000, 4001, 4002, 4003, 4005, 4008, 1000, 1001, 1006, None])
async def test_shard_when_closed_with_resumable_code_resumes(rig: Rig, code: int | None) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.server_close(code)
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6
    assert rig.shard.counters.identifies == 1


@pytest.mark.parametrize("code", [4007, 4009])
async def test_shard_when_closed_with_new_session_code_identifies_anew(rig: Rig, code: int) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.server_close(code)
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 2
    assert conn2.url.startswith(GATEWAY)
    assert rig.shard.session_id is None


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (4004, "check the token"),
        (4010, "shard id must be below the shard count"),
        (4011, "raise the shard count"),
        (4012, "only speaks v10"),
        (4013, "check the intents setting"),
        (4014, "enable them in the Developer Portal"),
    ],
)
async def test_shard_when_closed_with_fatal_code_stops_with_advice_and_never_reconnects(
    rig: Rig, code: int, advice: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    conn.server_close(code)
    await rig.clock.settle()
    assert rig.task is not None
    assert rig.task.done()
    with pytest.raises(ShardFatalError, match=advice) as info:
        rig.task.result()
    assert info.value.code == code
    assert f"close {code}" in str(info.value)
    assert rig.shard.state is ConnState.FATAL
    await rig.clock.advance(600)
    assert len(rig.transport.attempts) == 1
    assert TOKEN not in caplog.text
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(rig.shard)
    assert TOKEN not in repr(rig.shard.options)


async def test_shard_when_resume_url_unreachable_falls_back_to_the_gateway_url(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    rig.transport.refuse.add("ws://resume.test")
    conn.server_close(None)
    conn2 = await rig.connection(2)
    assert rig.transport.attempts[1].startswith("ws://resume.test/")
    assert conn2.url.startswith(GATEWAY + "/")
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6, "the session is resumed through the main gateway URL"


async def test_shard_when_connection_keeps_dropping_backs_off_with_full_jitter(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    rig.transport.refuse.update({"ws://resume.test", GATEWAY})
    conn.server_close(None)
    await rig.clock.advance(300)
    reconnect_sleeps = [s for s in rig.clock.sleeps if s not in (20.0, 40.0)]
    # full jitter with random() = 0.5: half of 1, 2, 4, 8, ... capped at 60
    assert reconnect_sleeps[:7] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert max(reconnect_sleeps) <= 30.0
    assert rig.shard.state is ConnState.RECONNECTING


async def test_dispatch_hands_on_name_seq_guild_key_and_raw_d(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(
        2, "MESSAGE_CREATE", {"id": "77", "guild_id": "123", "content": "hi", "author": {"guild_id": "5"}}
    )
    conn.dispatch(3, "MESSAGE_CREATE", {"id": "78", "content": "dm"})
    conn.dispatch(4, "GUILD_CREATE", {"id": "456", "name": "g"})
    e2, e3, e4 = rig.events[1:]
    assert (e2.conn, e2.session, e2.seq, e2.name, e2.key) == (CONN, "sess-1", 2, "MESSAGE_CREATE", 123)
    assert msgspec.json.decode(e2.data) == {
        "id": "77",
        "guild_id": "123",
        "content": "hi",
        "author": {"guild_id": "5"},
    }
    assert e3.key is None
    assert e4.key == 456


async def test_dispatch_when_seq_repeats_drops_the_duplicate_and_counts_gaps(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "TYPING_START", {"guild_id": "1"})
    conn.dispatch(2, "TYPING_START", {"guild_id": "1"})
    conn.dispatch(5, "TYPING_START", {"guild_id": "1"})
    assert [e.seq for e in rig.events] == [1, 2, 5]
    assert rig.shard.counters.duplicates == 1
    assert rig.shard.counters.gaps == 1


async def test_key_count_when_guilds_join_leave_or_go_unavailable_follows_them(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn, guilds=[1, 2])
    conn.dispatch(2, "GUILD_CREATE", {"id": "1"})
    conn.dispatch(3, "GUILD_CREATE", {"id": "3"})
    conn.dispatch(4, "GUILD_DELETE", {"id": "2", "unavailable": True})
    assert rig.shard.counters.key_count == 3
    conn.dispatch(5, "GUILD_DELETE", {"id": "2"})
    assert rig.shard.counters.key_count == 2


async def test_send_when_payload_too_large_refuses_it_locally(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    with pytest.raises(PayloadTooLarge, match="over Discord's limit of 4096"):
        await rig.shard.send(3, {"status": "online", "x": "y" * 5000})
    assert all(p["op"] != 3 for p in conn.sent)


async def test_send_when_shard_not_ready_times_out_with_a_clear_error(rig: Rig) -> None:
    await rig.connection(1)
    sender = asyncio.ensure_future(rig.shard.update_presence({"status": "idle"}, timeout=5))
    await rig.clock.advance(5.1)
    with pytest.raises(NotReady, match="discord:0/1 is not ready"):
        await sender


async def test_send_when_ready_goes_out_and_when_many_keeps_room_for_heartbeats(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    senders = [
        asyncio.ensure_future(rig.shard.request_guild_members(9, nonce=str(i), timeout=120))
        for i in range(130)
    ]
    await rig.clock.settle()
    sent = [p for p in conn.sent if p["op"] == 8]
    # IDENTIFY took one slot; 120 - 3 reserved - 1 = 116 commands now, the rest after the window.
    assert len(sent) == 116
    assert sent[0]["d"] == {"guild_id": "9", "query": "", "limit": 0, "nonce": "0"}
    await rig.clock.advance(20.1)  # the first heartbeat still has room
    assert conn.ops().count(1) == 1
    conn.deliver({"op": 11, "d": None})
    await rig.clock.advance(40)
    assert len([p for p in conn.sent if p["op"] == 8]) == 130
    await asyncio.gather(*senders)


async def test_send_when_no_slot_frees_within_the_timeout_refuses_with_the_reason(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    senders = [
        asyncio.ensure_future(rig.shard.update_presence({"status": "idle"}, timeout=5)) for _ in range(120)
    ]
    await rig.clock.advance(5.1)
    results = await asyncio.gather(*senders, return_exceptions=True)
    refused = [r for r in results if r is not None]
    assert len(refused) == 4
    assert all(isinstance(r, NotReady) and "outbound limit (120 per 60 s" in str(r) for r in refused)


async def test_close_when_handing_off_closes_resumably_and_exports_the_last_seq(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "TYPING_START", {"guild_id": "1"})
    snapshot = await rig.shard.close(handoff=True)
    assert conn.client_close_code == 4000
    assert snapshot == SessionSnapshot(
        conn=CONN,
        session_id="sess-1",
        seq=2,
        resume_url="ws://resume.test",
    )
    await rig.clock.settle()
    assert rig.task is not None
    assert rig.task.done()
    assert rig.shard.state is ConnState.STOPPED
    assert len(rig.transport.connections) == 1
    assert SessionSnapshot.decode(snapshot.encode()) == snapshot


async def test_close_when_stopping_closes_with_1000_and_forgets_the_session(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    assert await rig.shard.close() is None
    assert conn.client_close_code == 1000
    assert rig.shard.session_id is None


async def test_shard_when_given_a_snapshot_resumes_without_identifying() -> None:
    clock, transport, queue = FakeClock(fixed_random=0.5), FakeTransport(), GrantAll()
    snapshot = SessionSnapshot(
        conn=ConnKey("discord", 0, 2, 4), session_id="old", seq=41, resume_url="ws://r.test"
    )
    events: list[Event] = []
    shard = DiscordShard(
        ConnKey("discord", 0, 2, 4),
        ShardOptions(token=TOKEN, intents=1, compression=Compression.ZLIB_STREAM),
        events.append,
        gateway_url=GATEWAY, identify_queue=queue, transport=transport, clock=clock, snapshot=snapshot,
    )  # fmt: skip
    task = asyncio.ensure_future(shard.run())
    await clock.settle()
    conn = transport.last
    assert conn.url == "ws://r.test/?v=10&encoding=json&compress=zlib-stream"
    await shard.close()
    await task
    assert queue.acquired == []


def test_shard_when_snapshot_is_for_another_shard_refuses_it() -> None:
    snapshot = SessionSnapshot(conn=ConnKey("discord", 0, 1, 4), session_id="s", seq=1, resume_url="ws://r")
    with pytest.raises(ValueError, match="does not fit discord:2/4"):
        DiscordShard(
            ConnKey("discord", 0, 2, 4),
            ShardOptions(token=TOKEN, intents=1),
            lambda e: None,
            gateway_url=GATEWAY,
            snapshot=snapshot,
        )


async def test_shard_when_a_plain_payload_is_undecodable_drops_and_counts_it(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.on_message(b"{not json")
    conn.dispatch(2, "TYPING_START", {"guild_id": "1"})
    await rig.clock.settle()
    assert conn.client_close_code is None, "plain JSON: the next payload reads on its own"
    assert rig.shard.counters.decode_errors == 1
    assert [e.seq for e in rig.events] == [1, 2]


async def test_shard_when_a_hello_is_unusable_reconnects_and_resumes(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.server_close(None)
    conn2 = await rig.connection(2)
    conn2.hello(interval_ms=0)  # a HELLO the shard cannot heartbeat by
    await rig.clock.settle()
    assert conn2.client_close_code == 4000
    assert rig.shard.counters.decode_errors == 1
    conn3 = await rig.connection(3)
    conn3.hello()
    await rig.clock.settle()
    assert conn3.sent[0]["op"] == 6


async def test_shard_when_sink_raises_counts_it_and_keeps_going(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)

    def bad_sink(event: Event) -> None:
        raise RuntimeError("bug in the consumer")

    rig.shard.sink = bad_sink
    conn.dispatch(2, "TYPING_START", {"guild_id": "1"})
    assert rig.shard.counters.sink_errors == 1
    assert rig.shard.seq == 2
    assert rig.shard.state is ConnState.READY


async def test_shard_when_no_hello_arrives_reconnects(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.clock.advance(20.5)
    assert conn.aborted
    await rig.connection(2)


async def test_dispatch_when_guild_id_is_unusable_delivers_without_key_and_keeps_the_connection(
    rig: Rig,
) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "MESSAGE_CREATE", {"guild_id": "not-a-number"})
    conn.dispatch(3, "MESSAGE_CREATE", {"guild_id": 12})
    conn.dispatch(4, "GUILD_CREATE", {"id": ["odd"]})
    assert [(e.seq, e.key) for e in rig.events[1:]] == [(2, None), (3, None), (4, None)]
    assert rig.shard.counters.key_errors == 3
    assert conn.client_close_code is None
    assert rig.shard.seq == 4


async def test_dispatch_when_ready_is_malformed_reconnects_instead_of_raising(rig: Rig) -> None:
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    conn.dispatch(1, "READY", {"v": 10})  # no session_id
    await rig.clock.settle()
    assert conn.client_close_code == 4000
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 2, "no session was established: identify again"


async def test_heartbeat_when_connection_already_closing_does_not_claim_a_zombie(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.echo_close = False  # the close handshake will hang
    await rig.clock.advance(20.1)  # a beat that is never acknowledged
    conn.deliver({"op": 7, "d": None})
    await rig.clock.advance(40)  # the next beat is due while the close is still pending
    conn.server_close(4000)
    await rig.clock.settle()
    assert len(rig.transport.connections) == 2, "op 7 reconnects at once, not after a zombie backoff"


async def test_shard_when_identify_goes_out_tells_the_queue_in_the_same_step(rig: Rig) -> None:
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    assert conn.ops() == [2]
    assert rig.queue.sends == [CONN], "sent() is called as the IDENTIFY leaves, not later"


async def test_shard_when_resumed_has_its_own_seq_hands_it_on_without_gap_or_duplicate(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "TYPING_START", {"guild_id": "9"})
    conn.server_close(None)
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6
    conn2.dispatch(3, "MESSAGE_CREATE", {"guild_id": "9"})  # replayed
    conn2.deliver({"op": 0, "s": 4, "t": "RESUMED", "d": {"_trace": []}})
    conn2.dispatch(5, "MESSAGE_CREATE", {"guild_id": "9"})
    await rig.clock.settle()
    assert [(e.seq, e.name) for e in rig.events] == [
        (1, "READY"),
        (2, "TYPING_START"),
        (3, "MESSAGE_CREATE"),
        (4, "RESUMED"),
        (5, "MESSAGE_CREATE"),
    ]
    resumed = rig.events[3]
    assert (resumed.conn, resumed.session, resumed.key) == (CONN, "sess-1", None)
    assert rig.shard.counters.gaps == 0
    assert rig.shard.counters.duplicates == 0
    assert rig.shard.counters.resumes == 1
    assert rig.shard.seq == 5
    assert rig.shard.state is ConnState.READY


async def test_send_command_when_body_is_op_and_d_sends_it_and_refuses_other_shapes(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    await rig.shard.send_command({"op": 3, "d": {"status": "idle"}})
    assert conn.sent[-1] == {"op": 3, "d": {"status": "idle"}}
    for body in ({"d": {}}, {"op": "3", "d": {}}, [3, {}], {"op": 3, "d": {}, "x": 1}):
        with pytest.raises(CommandRejected, match="a Discord command is"):
            await rig.shard.send_command(body)
    with pytest.raises(CommandRejected, match="sent by the shard itself"):
        await rig.shard.send_command({"op": 2, "d": {}})


async def test_shard_when_run_raises_unexpectedly_drops_its_socket(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await rig.connection(1)

    def broken() -> dict[str, object]:
        raise AssertionError("a bug")

    monkeypatch.setattr(DiscordShard, "_identify_payload", lambda self: broken())
    conn.hello()
    await rig.clock.settle()
    assert rig.task is not None
    assert rig.task.done()
    with pytest.raises(AssertionError, match="a bug"):
        rig.task.result()
    assert conn.aborted, "the connection an exception left open is dropped, not leaked"
    assert rig.queue.released == [(CONN, False)], "the grant goes back to the queue"


async def test_shard_when_resumed_repeats_a_seen_seq_counts_a_duplicate_and_still_ends_the_resume(
    rig: Rig,
) -> None:
    # Not Discord (it gives RESUMED the next seq): a gateway that repeats the last replayed seq.
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "TYPING_START", {"guild_id": "9"})
    conn.server_close(None)
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert rig.shard.state is ConnState.RESUMING
    conn2.dispatch(3, "MESSAGE_CREATE", {"guild_id": "9"})
    conn2.deliver({"op": 0, "s": 3, "t": "RESUMED", "d": {}})
    conn2.dispatch(4, "MESSAGE_CREATE", {"guild_id": "9"})
    await rig.clock.settle()
    assert [(e.seq, e.name) for e in rig.events][2:] == [(3, "MESSAGE_CREATE"), (4, "MESSAGE_CREATE")]
    assert rig.shard.counters.duplicates == 1
    assert rig.shard.counters.gaps == 0
    assert rig.shard.counters.resumes == 1
    assert rig.shard.state is ConnState.READY


async def test_dispatch_stamps_every_event_with_the_shards_lease_epoch(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.dispatch(2, "MESSAGE_CREATE", {"id": "1", "guild_id": "123"})
    rig.shard.epoch = 6  # as the worker sets it from Assign/Adopt
    conn.dispatch(3, "MESSAGE_CREATE", {"id": "2", "guild_id": "123"})
    assert [(e.seq, e.epoch) for e in rig.events] == [(1, 0), (2, 0), (3, 6)], "0 until set"


# -- lifecycle notices ------------------------------------------------------------------------------


def _kinds(notices: list[Notice]) -> list[str]:
    return [n.kind.removeprefix("shardrunner.") for n in notices]


async def test_shard_lifecycle_when_op7_comes_says_disconnected_once_then_resumed(rig: Rig) -> None:
    notices: list[Notice] = []
    rig.shard.notify = notices.append
    conn = await rig.connection(1)
    await rig.ready(conn)
    assert notices == [Notice(lifecycle.READY, CONN, {"session": "sess-1"})]
    rig.transport.refuse.add("ws://resume.test")  # the first try fails: no second disconnect
    conn.deliver({"op": 7, "d": None})
    await rig.clock.settle()
    assert notices[1] == Notice(
        lifecycle.DISCONNECTED, CONN, {"code": 4000, "reason": "reconnect", "resumable": True}
    )
    conn2 = await rig.connection(2)
    assert conn2.url.startswith(GATEWAY)
    assert len(rig.transport.attempts) == 3
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 6
    conn2.deliver({"op": 0, "s": 2, "t": "RESUMED", "d": {}})
    await rig.clock.settle()
    assert _kinds(notices) == ["ready", "disconnected", "resumed"]
    assert notices[2].fields == {"session": "sess-1"}


async def test_shard_lifecycle_when_op9_is_not_resumable_says_disconnected_then_ready(rig: Rig) -> None:
    notices: list[Notice] = []
    rig.shard.notify = notices.append
    conn = await rig.connection(1)
    await rig.ready(conn)
    conn.deliver({"op": 9, "d": False})
    await rig.clock.settle()
    assert notices[-1].fields == {"code": 1000, "reason": "invalid_session", "resumable": False}
    conn2 = await rig.connection(2)
    conn2.hello()
    await rig.clock.settle()
    assert conn2.sent[0]["op"] == 2
    conn2.ready(session_id="sess-2")
    await rig.clock.settle()
    assert _kinds(notices) == ["ready", "disconnected", "ready"]
    assert notices[-1].fields == {"session": "sess-2"}


async def test_shard_lifecycle_when_closed_or_handed_off_says_nothing(rig: Rig) -> None:
    notices: list[Notice] = []
    rig.shard.notify = notices.append
    conn = await rig.connection(1)
    conn.server_close(4000)  # before READY: nothing was up, so no disconnect either
    await rig.ready(await rig.connection(2))
    await rig.shard.close(handoff=True)
    assert _kinds(notices) == ["ready"]


async def test_shard_when_a_start_hook_is_set_runs_it_before_asking_for_the_grant(rig: Rig) -> None:
    asked: list[tuple[ConnKey, dict[str, object], list[ConnKey]]] = []
    release = asyncio.Event()

    async def hook(conn: ConnKey, d: dict[str, object]) -> dict[str, object]:
        asked.append((conn, dict(d), list(rig.queue.acquired)))
        await release.wait()
        return {**d, "intents": 1, "presence": {"status": "dnd"}, "token": "other", "shard": [5, 6]}

    rig.shard.options.start_hook = hook
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    [(who, shown, acquired)] = asked
    assert (who, acquired) == (CONN, []), "the grant is not asked for while the hook runs"
    assert "token" not in shown
    assert shown["shard"] == [0, 1]
    assert conn.sent == []
    assert rig.queue.acquired == []
    release.set()
    await rig.clock.settle()
    assert rig.queue.acquired == [CONN]
    d = conn.sent[0]["d"]
    assert (d["token"], d["shard"], d["intents"], d["presence"]) == (TOKEN, [0, 1], 1, {"status": "dnd"})


async def test_shard_when_the_connection_closes_during_the_start_hook_asks_no_grant(rig: Rig) -> None:
    async def hook(conn: ConnKey, d: dict[str, object]) -> dict[str, object]:
        await asyncio.Event().wait()
        return d

    rig.shard.options.start_hook = hook
    conn = await rig.connection(1)
    conn.hello()
    await rig.clock.settle()
    conn.server_close(4000)
    await rig.clock.settle()
    assert rig.queue.acquired == []
    assert conn.sent == []
    assert rig.shard.state is ConnState.RECONNECTING


async def test_shard_when_the_start_hook_answers_an_unencodable_payload_sends_the_default_identify(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    async def hook(conn: ConnKey, d: dict[str, object]) -> dict[str, object]:
        return {**d, "presence": object()}  # msgspec cannot encode it

    rig.shard.options.start_hook = hook
    for n in (1, 2):  # logged once, however many identifies
        conn = await rig.connection(n)
        conn.hello()
        await rig.clock.settle()
        d = conn.sent[0]["d"]
        assert "presence" not in d
        assert (d["token"], d["shard"]) == (TOKEN, [0, 1])
        assert rig.shard.state is ConnState.IDENTIFYING, "the connection stays up"
        conn.server_close(4000)
        await rig.clock.settle()
        await rig.clock.advance(10)
    assert len([r for r in caplog.records if "identify hook" in r.getMessage()]) == 1
    assert TOKEN not in caplog.text


class HeldQueue(GrantAll):
    """GrantAll, but near() waits until ``turn`` is set: the shard's turn in line."""

    def __init__(self) -> None:
        super().__init__()
        self.turn = asyncio.Event()

    async def near(self, conn: ConnKey) -> None:
        self.nears.append(conn)
        await self.turn.wait()


def held_shard(queue: GrantAll, **kw: object) -> tuple[DiscordShard, FakeClock, FakeTransport]:
    clock, transport = FakeClock(fixed_random=0.5), FakeTransport()
    shard = DiscordShard(
        CONN,
        ShardOptions(token=TOKEN, intents=1, compression=Compression.NONE),
        lambda e: None,
        gateway_url=GATEWAY,
        identify_queue=queue,
        transport=transport,
        clock=clock,
        **kw,  # type: ignore[arg-type]
    )
    return shard, clock, transport


async def test_shard_when_it_must_identify_connects_only_once_its_turn_is_near() -> None:
    queue = HeldQueue()
    shard, clock, transport = held_shard(queue)
    task = asyncio.ensure_future(shard.run())
    await clock.advance(30)
    assert queue.nears == [CONN]
    assert transport.attempts == [], "in line, not connected"
    assert shard.state is ConnState.QUEUED
    queue.turn.set()
    await clock.settle()
    transport.last.hello()
    await clock.settle()
    assert queue.acquired == [CONN]
    assert transport.last.sent[0]["op"] == 2
    await shard.close()
    await task


async def test_shard_when_the_connect_fails_after_its_turn_leaves_the_line_and_a_close_in_line_too() -> None:
    queue = GrantAll()
    shard, clock, transport = held_shard(queue)
    transport.refuse.add(GATEWAY)
    task = asyncio.ensure_future(shard.run())
    await clock.settle()
    assert queue.released == [(CONN, False)], "its place goes to the next in line"
    assert queue.acquired == []
    held = HeldQueue()
    shard2, clock2, _ = held_shard(held)
    task2 = asyncio.ensure_future(shard2.run())
    await clock2.settle()
    await shard2.close()
    await asyncio.gather(task2, clock.advance(0))
    assert held.released == [(CONN, False)], "stopped while in line: out of it"
    await shard.close()
    await task


async def test_shard_when_it_resumes_skips_the_line_but_waits_for_a_handshake_slot() -> None:
    gate = ConnectGate(1)
    await gate.enter(resume=False)  # another shard's handshake is in flight
    queue = GrantAll()
    snapshot = SessionSnapshot(conn=CONN, session_id="old", seq=3, resume_url="ws://r.test")
    shard, clock, transport = held_shard(queue, connect_gate=gate, snapshot=snapshot)
    task = asyncio.ensure_future(shard.run())
    await clock.settle()
    assert transport.attempts == []
    assert gate.waiting == 1
    gate.leave()
    await clock.settle()
    assert len(transport.attempts) == 1
    assert gate.in_flight == 1, "its handshake holds the slot"
    transport.last.hello()
    await clock.settle()
    assert gate.in_flight == 0, "HELLO ends the handshake: the slot goes to the next"
    assert transport.last.sent[0]["op"] == 6
    assert queue.nears == []
    assert queue.acquired == []
    await shard.close()
    await task


async def test_shard_when_idle_holds_no_instance_dict_no_heartbeat_task_and_no_event_deque(rig: Rig) -> None:
    conn = await rig.connection(1)
    await rig.ready(conn)
    assert not hasattr(rig.shard, "__dict__"), "slots: a 35-key dict was 1.6 KiB per shard"
    tasks = [t for t in asyncio.all_tasks() if not t.done()]
    assert len(tasks) == 2, f"the test and the shard's run, no heartbeat task: {tasks}"
    assert rig.shard._heartbeat_timer is not None
    assert rig.shard._hello is None, "the HELLO future is not kept for the connection's life"
