"""The bot-side client against a fake supervisor and fake workers (no cluster)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as p
from shardrunner.client import Client, ClientError
from shardrunner.protocol.discord import shard_for_guild
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.rundir import RunDir
from tests.conftest import wait_for

OLD = [ConnKey("discord", 0, i, 4) for i in range(4)]
NEW = [ConnKey("discord", 1, i, 8) for i in range(8)]


class FakeCluster:
    """A supervisor answering ``endpoints`` (brief interface 5) and one bus ROUTER per worker,
    each keeping what members sent it and answering commands as told."""

    def __init__(self, run_dir: Path, workers: dict[str, list[ConnKey]]) -> None:
        self.ctx = zmq.asyncio.Context()
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.bind(RunDir(run_dir).control_endpoint)
        self.buses: dict[str, zmq.asyncio.Socket] = {}
        self.got: dict[str, list[p.BusMessage]] = {}
        self.workers = workers
        for endpoint in workers:
            bus = self.buses[endpoint] = self.ctx.socket(zmq.ROUTER)
            bus.bind(endpoint)
            self.got[endpoint] = []
        self.command_error: str | None = None
        self.platforms: dict[str, Any] = {"discord": {"shards": 8}}
        self.members: dict[str, bytes] = {}
        self._tasks = [asyncio.ensure_future(self._answer())]
        self._tasks += [asyncio.ensure_future(self._serve(e)) for e in workers]

    def endpoints(self) -> dict[str, Any]:
        return {
            "platforms": self.platforms,
            "workers": [
                {"slot": i, "generation": 0, "endpoint": e, "conns": [str(c) for c in conns]}
                for i, (e, conns) in enumerate(self.workers.items())
            ],
        }

    async def _answer(self) -> None:
        while True:
            identity, _, request = await self.control.recv_multipart()
            assert msgspec.json.decode(request) == {"command": "endpoints"}
            reply = msgspec.json.encode({"ok": True, "result": self.endpoints()})
            await self.control.send_multipart([identity, b"", reply])

    async def _serve(self, endpoint: str) -> None:
        bus = self.buses[endpoint]
        while True:
            identity, data = await bus.recv_multipart()
            self.members[endpoint] = identity
            message = p.decode(data)
            self.got[endpoint].append(message)
            if isinstance(message, p.Command):
                result = p.CommandResult(message.request, self.command_error is None, self.command_error)
                await bus.send_multipart([identity, p.encode(result)])

    async def send(self, endpoint: str, message: p.BusMessage) -> None:
        await self.buses[endpoint].send_multipart([self.members[endpoint], p.encode(message)])

    def commands(self, endpoint: str) -> list[p.Command]:
        return [m for m in self.got[endpoint] if isinstance(m, p.Command)]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sock in [self.control, *self.buses.values()]:
            sock.close(0)
        self.ctx.term()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[FakeCluster]:
    fake = FakeCluster(tmp_path, {f"ipc://{tmp_path}/bus-0.sock": OLD, f"ipc://{tmp_path}/bus-1.sock": NEW})
    try:
        yield fake
    finally:
        await fake.close()


async def test_client_when_no_cluster_runs_says_how_to_start_one(tmp_path: Path) -> None:
    client = Client(tmp_path)
    with pytest.raises(ClientError, match="no cluster is running in"):
        await client.start()


async def test_client_when_started_joins_every_worker_and_knows_their_connections(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    async with Client(tmp_path, group="g", member="m") as client:
        for endpoint in cluster.workers:

            def joined(e: str = endpoint) -> bool:
                return bool(cluster.got[e])

            await wait_for(joined, 5, f"the join at {endpoint}")
            assert cluster.got[endpoint][0] == p.Join("g", "m", None, True, None, None)
        assert client.conns == sorted(OLD + NEW)
        assert client.platforms == {"discord": {"shards": 8}}
        assert client.num_shards == 8, "the newest Discord set"


async def test_client_send_when_addressed_by_guild_goes_to_the_owner_in_the_newest_set(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    guild = (123456 << 22) | 77
    old_bus, new_bus = cluster.workers
    async with Client(tmp_path) as client:
        await client.send(3, {"status": "dnd"}, guild=guild, timeout=5)
        await client.send(4, {"channel_id": None}, shard=2, timeout=5)
        await client.command("discord", {"op": 8, "d": {}}, conn=OLD[3], timeout=5)
    owner = NEW[shard_for_guild(guild, 8)]
    assert [(c.platform, c.conn, c.key, c.body) for c in cluster.commands(new_bus)] == [
        ("discord", owner, guild, {"op": 3, "d": {"status": "dnd"}}),
        ("discord", NEW[2], None, {"op": 4, "d": {"channel_id": None}}),
    ]
    assert [(c.conn, c.body) for c in cluster.commands(old_bus)] == [(OLD[3], {"op": 8, "d": {}})]


async def test_client_send_when_the_endpoints_name_the_old_set_goes_to_its_owner(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    """A reshard before its switch: the new set runs, the old one delivers and takes the sends."""
    guild = (123456 << 22) | 77
    cluster.platforms = {"discord": {"generation": 0, "num_shards": 4}}
    old_bus, new_bus = cluster.workers
    async with Client(tmp_path) as client:
        assert client.num_shards == 4
        await client.send(3, {"status": "dnd"}, guild=guild, timeout=5)
    assert [(c.conn, c.key) for c in cluster.commands(old_bus)] == [(OLD[shard_for_guild(guild, 4)], guild)]
    assert cluster.commands(new_bus) == []


async def test_client_command_when_the_worker_refuses_raises_its_reason(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    cluster.command_error = "discord:2/8@1 is not ready (resuming); op 3 not sent"
    async with Client(tmp_path) as client:
        with pytest.raises(ClientError, match=r"discord:2/8@1 is not ready \(resuming\); op 3 not sent"):
            await client.send(3, {}, shard=2, timeout=5)


async def test_client_command_when_no_worker_has_the_connection_fails_after_the_timeout(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    async with Client(tmp_path) as client:
        with pytest.raises(ClientError, match=r"no running worker has discord:0/2 \(waited 0.2 s\)"):
            await client.command("discord", {}, conn=ConnKey("discord", 0, 0, 2), timeout=0.2)
        with pytest.raises(ValueError, match="give conn= or key="):
            await client.command("discord", {})


async def test_client_when_the_same_event_comes_from_two_sets_keeps_both_and_drops_a_repeat(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    """Duplicates are told apart by connection: shard 1 of the set of 4 and shard 1 of the set of
    8, with the same session id and seq, are two events; the same one again is a duplicate."""
    old_bus, new_bus = cluster.workers
    async with Client(tmp_path) as client:
        await wait_for(lambda: all(e in cluster.members for e in cluster.workers), 5, "the joins")
        for batch, (endpoint, conn) in enumerate(((old_bus, OLD[1]), (new_bus, NEW[1]), (new_bus, NEW[1]))):
            event = Event(conn, "s", 5, "MESSAGE_CREATE", 9, b"{}")
            await cluster.send(endpoint, p.Batch("default", batch + 1, [event]))
        got = [await asyncio.wait_for(client.next_event(), 5) for _ in range(2)]
        assert [(e.conn, e.session, e.seq) for e in got] == [(OLD[1], "s", 5), (NEW[1], "s", 5)]
        await wait_for(lambda: client.duplicates == 1, 5, "the repeat dropped")


G = (123456 << 22) | 77
OLD_G, NEW_G = OLD[shard_for_guild(G, 4)], NEW[shard_for_guild(G, 8)]


class Copies:
    """One guild's Discord events as each set delivers them: its own session and seqs, and its own
    serialisation of a message (a gateway node may write the same payload differently)."""

    def __init__(self) -> None:
        self.seqs = {OLD_G: 100, NEW_G: 10}
        self.label: dict[tuple[ConnKey, int], str] = {}

    def event(self, conn: ConnKey, label: str) -> Event:
        self.seqs[conn] += 1
        kind, _, n = label.partition(":")
        if kind == "m":
            body = b'{"id":"%b","content":"hi"}' if conn is OLD_G else b'{"content": "hi", "id": "%b"}'
            name, data = "MESSAGE_CREATE", body % n.encode()
        else:  # equal bytes on both sets, and for two genuinely equal events
            name, data = "PRESENCE_UPDATE" if kind == "p" else "TYPING_START", b'{"user_id":"7"}'
        self.label[conn, self.seqs[conn]] = label
        return Event(conn, "old" if conn is OLD_G else "new", self.seqs[conn], name, G, data)

    def batch(self, conn: ConnKey, number: int, labels: list[str], marked: slice = slice(None)) -> p.Batch:
        events = [self.event(conn, label) for label in labels]
        return p.Batch("default", number, events, dedupe=list(range(len(events)))[marked])


async def test_client_when_two_sets_deliver_marked_copies_keeps_one_of_each_in_first_seen_order(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    """The switch of a reshard: the old set (generation 0) delivers, both deliver marked copies,
    then the new set (generation 1). Two genuinely equal events (p, p) stay two; copies written
    differently (messages) still pair; a replay is a seq duplicate, never another occurrence."""
    old_bus, new_bus = cluster.workers
    copies = Copies()
    async with Client(tmp_path) as client:
        await wait_for(lambda: all(e in cluster.members for e in cluster.workers), 5, "the joins")
        got: list[str] = []

        async def step(bus: str, batch: p.Batch, delivered: int, cross: int) -> None:
            await cluster.send(bus, batch)
            for _ in range(delivered):
                event = await asyncio.wait_for(client.next_event(), 5)
                got.append(copies.label[event.conn, event.seq])
            await wait_for(lambda: client.cross_duplicates == cross, 5, f"{cross} cross-set duplicates")

        first = copies.batch(OLD_G, 1, ["m:0", "m:1", "m:2", "p"], slice(1, None))
        await step(old_bus, first, delivered=4, cross=0)
        await step(new_bus, copies.batch(NEW_G, 1, ["m:2", "p", "m:3"]), delivered=1, cross=2)
        replay = p.Batch("default", 2, [first.events[3]], dedupe=[0])  # p, same session and seq
        await step(old_bus, replay, delivered=0, cross=2)
        await wait_for(lambda: client.duplicates == 1, 5, "the replay dropped by its seq")
        await step(old_bus, copies.batch(OLD_G, 3, ["m:3", "p", "t", "m:4", "m:8"]), delivered=4, cross=3)
        await step(new_bus, copies.batch(NEW_G, 2, ["p", "t", "m:4", "m:5"]), delivered=1, cross=6)
        await step(old_bus, copies.batch(OLD_G, 4, ["m:5"]), delivered=0, cross=7)  # only a duplicate
        # A third p, whose old copy was muted: the replay above did not count as an occurrence.
        await step(new_bus, copies.batch(NEW_G, 3, ["m:6", "p"]), delivered=2, cross=7)
        # The old set's m:8 waits for its copy, but this one is not marked: it is not checked.
        unmarked = copies.batch(NEW_G, 4, ["m:8", "m:7"], slice(1, None))
        await step(new_bus, unmarked, delivered=2, cross=7)
        first_copies = ["m:0", "m:1", "m:2", "p", "m:3", "p", "t", "m:4", "m:8", "m:5", "m:6", "p"]
        assert got == [*first_copies, "m:8", "m:7"]
        assert client.duplicates == 1
    # Every batch was acknowledged, the one that held only a duplicate too.
    for bus, last in ((old_bus, 4), (new_bus, 4)):

        def acked(e: str = bus, n: int = last) -> bool:
            acks = [m.batch for m in cluster.got[e] if isinstance(m, p.Ack)]
            return bool(acks) and acks[-1] == n

        await wait_for(acked, 5, f"the acks at {bus}")


async def test_client_when_marked_copies_come_past_the_window_keeps_both(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    old_bus, new_bus = cluster.workers
    copies = Copies()
    now = 1000.0
    async with Client(tmp_path) as client:
        client._now = lambda: now
        await wait_for(lambda: all(e in cluster.members for e in cluster.workers), 5, "the joins")
        await cluster.send(old_bus, copies.batch(OLD_G, 1, ["m:1", "m:2"]))
        assert [(await asyncio.wait_for(client.next_event(), 5)).conn for _ in range(2)] == [OLD_G] * 2
        now += 29.0
        await cluster.send(new_bus, copies.batch(NEW_G, 1, ["m:1"]))
        await wait_for(lambda: client.cross_duplicates == 1, 5, "the copy inside the window")
        now += 1.0
        await cluster.send(new_bus, copies.batch(NEW_G, 2, ["m:2"]))
        assert (await asyncio.wait_for(client.next_event(), 5)).conn == NEW_G, "past the window"
        assert client.cross_duplicates == 1


async def test_client_when_dedupe_is_off_keeps_marked_copies(tmp_path: Path, cluster: FakeCluster) -> None:
    old_bus, new_bus = cluster.workers
    copies = Copies()
    async with Client(tmp_path, dedupe=False) as client:
        await wait_for(lambda: all(e in cluster.members for e in cluster.workers), 5, "the joins")
        await cluster.send(old_bus, copies.batch(OLD_G, 1, ["m:1"]))
        assert (await asyncio.wait_for(client.next_event(), 5)).conn == OLD_G
        await cluster.send(new_bus, copies.batch(NEW_G, 1, ["m:1"]))
        assert (await asyncio.wait_for(client.next_event(), 5)).conn == NEW_G
        assert client.cross_duplicates == 0


async def test_client_when_a_superseded_holder_sends_late_drops_its_events_and_counts_them(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    """Several hosts: shard 1 moved from the old holder (epoch 1) to a new one (epoch 2), which
    resumed it; the old holder's events that come after the new one's are dropped, counted, and
    acknowledged like the rest (marked batches too)."""
    old_bus, new_bus = cluster.workers

    def one(seq: int, epoch: int, body: bytes = b"{}") -> Event:
        return Event(OLD[1], "s", seq, "MESSAGE_CREATE", 9, body, epoch)

    async with Client(tmp_path) as client:
        await wait_for(lambda: all(e in cluster.members for e in cluster.workers), 5, "the joins")
        await cluster.send(old_bus, p.Batch("default", 1, [one(5, 1)]))
        await cluster.send(new_bus, p.Batch("default", 1, [one(6, 2)]))
        got = [await asyncio.wait_for(client.next_event(), 5) for _ in range(2)]
        assert [e.seq for e in got] == [5, 6]
        late = [one(7, 1)]
        await cluster.send(old_bus, p.Batch("default", 2, late))
        await cluster.send(old_bus, p.Batch("default", 3, late, dedupe=[0]))
        await wait_for(lambda: client.stale_dropped == 2, 5, "the late events dropped")
        await cluster.send(new_bus, p.Batch("default", 2, [one(7, 2, b"[2]")]))
        event = await asyncio.wait_for(client.next_event(), 5)
        assert (event.seq, event.raw) == (7, b"[2]"), "the new holder's copy is delivered"
        client._mark_current_done()
        client._send_acks()

        def acked() -> list[int]:
            return [m.batch for m in cluster.got[old_bus] if isinstance(m, p.Ack)]

        await wait_for(lambda: 3 in acked(), 5, "the dropped batches acknowledged")
        assert client.duplicates == 0


async def test_client_when_a_new_worker_answers_at_a_known_endpoint_acknowledges_its_batches(
    tmp_path: Path, cluster: FakeCluster
) -> None:
    """A supervisor started again in the same run dir numbers its workers' endpoints again, and the
    new worker's batches start again at 1: the client must count that link afresh (it acknowledged
    batch 3 of the old worker) or it never acknowledges the new one's, whose window then fills."""
    bus = next(iter(cluster.workers))
    conn = OLD[0]
    async with Client(tmp_path) as client:
        await wait_for(lambda: bus in cluster.members, 5, "the join")
        for n in range(1, 4):
            await cluster.send(bus, p.Batch("default", n, [Event(conn, "s", n, "MESSAGE_CREATE", 1, b"{}")]))
        got = [await asyncio.wait_for(client.next_event(), 5) for _ in range(3)]
        assert [e.seq for e in got] == [1, 2, 3]

        def acked() -> list[int]:
            return [m.batch for m in cluster.got[bus] if isinstance(m, p.Ack)]

        client._mark_current_done()
        await wait_for(lambda: acked()[-1:] == [3], 5, "the old worker's batches acknowledged")
        # The new worker resumes from before what it does not know was processed: seq 3 comes again.
        replay = [Event(conn, "s", s, "MESSAGE_CREATE", 1, b"{}") for s in (3, 4, 5)]
        await cluster.send(bus, p.Batch("default", 1, replay))
        got = [await asyncio.wait_for(client.next_event(), 5) for _ in range(2)]
        assert [e.seq for e in got] == [4, 5], "the replayed seq 3 is dropped by the dedupe"
        client._mark_current_done()
        await wait_for(lambda: acked()[-1:] == [1], 5, "the new worker's batch 1 acknowledged")
