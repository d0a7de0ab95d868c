"""Bad input on the supervisor's control socket and on its worker link (docs/cluster.md, bad input).

Whatever a peer sends the control socket (garbage, a request of the wrong shape, a huge one, half a
multipart message, a flood it never reads the answers of), the supervisor answers a clear error or
drops the peer, and answers the next real request. A worker's garbage on the link is dropped with a
line naming the worker; the next message goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
import zmq.asyncio
from hypothesis import given
from hypothesis import strategies as st

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.commands import MAX_REQUEST_BYTES, ControlServer
from shardrunner.cluster.supervisor.link import ZmqWorkerLink
from shardrunner.control import CommandError, call_endpoint
from shardrunner.rundir import RunDir
from tests.fuzz.corpus import corpus


class Target:
    """Every command answers something small; a request's fields reach it as sent."""

    stopping = False

    def status(self) -> Any:
        return {"workers": []}

    def endpoints(self) -> dict[str, Any]:
        return {"platforms": {}, "workers": []}

    def request_reload(self) -> asyncio.Future[str]:
        done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done.set_result("reloaded")
        return done

    def request_stop(self) -> str:
        return "stopping"

    async def reshard(self, shards: int | None, *, dry_run: bool, abort: bool) -> dict[str, Any]:
        return {"shards": shards, "dry_run": dry_run}

    def channels(self, action: str, names: list[str]) -> dict[str, Any]:
        if action not in ("add", "remove", "list"):
            raise CommandError(f"unknown action {action!r}")
        return {"channels": sorted(names)}


class Recorder:
    """Stands for the control socket in the property tests: what the server sends."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []

    async def send_multipart(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
commands = st.sampled_from(["status", "reload", "stop", "reshard", "channels", "endpoints", "nope"])
requests = st.one_of(
    st.builds(
        lambda c, extra: {"command": c, **extra}, commands, st.dictionaries(st.text(max_size=8), json_values)
    ),
    st.builds(
        lambda c, shards, action, names: {"command": c, "shards": shards, "action": action, "names": names},
        commands,
        json_values,
        json_values,
        json_values,
    ),
    st.builds(lambda c: {"command": c}, json_values),
    json_values,
).map(lambda r: json.dumps(r).encode())
bodies = requests | st.binary(max_size=40)


def _answer(body_frames: list[bytes], *, remote: bool = False) -> dict[str, Any]:
    server = ControlServer(zmq.asyncio.Context.instance(), "ipc://unused", Target())  # type: ignore[arg-type]
    sock = Recorder()
    server._sock = sock  # type: ignore[assignment]
    asyncio.run(server._answer(sock, [b"peer", *body_frames], remote))  # type: ignore[arg-type]
    [frames] = sock.sent
    assert frames[:2] == [b"peer", b""]
    reply = msgspec.json.decode(frames[2])
    assert isinstance(reply, dict)
    if not reply["ok"]:
        assert isinstance(reply["error"], str)
        assert "\n" not in reply["error"], "one line"
        assert server.refused == 1
    return reply


@given(body=bodies, remote=st.booleans())
def test_control_when_a_request_is_anything_the_answer_is_a_result_or_one_line_error(
    body: bytes, remote: bool
) -> None:
    _answer([b"", body], remote=remote)


def test_control_when_the_corpus_is_replayed_each_request_is_answered() -> None:
    for name, data in corpus("control"):
        reply = _answer([b"", data])
        assert reply["ok"] == name.startswith("ok-"), (name, reply)


def test_control_when_a_request_lacks_the_empty_frame_or_has_more_frames_answers() -> None:
    assert _answer([b'{"command": "status"}'])["ok"], "no empty frame: the last frame is the request"
    assert _answer([b"", b"junk", b'{"command": "status"}'])["ok"]


@pytest.fixture
def short() -> Any:
    """A directory with a short path (an ipc path is at most about 100 bytes)."""
    where = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
    yield where
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
async def control(short: Path) -> AsyncIterator[tuple[ControlServer, zmq.asyncio.Context]]:
    ctx = zmq.asyncio.Context()
    server = ControlServer(ctx, f"ipc://{short}/control.sock", Target())  # type: ignore[arg-type]
    server.bind()
    task = asyncio.ensure_future(server.serve())
    try:
        yield server, ctx
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        ctx.destroy(linger=0)


async def test_control_over_sockets_when_peers_misbehave_the_next_real_request_is_answered(
    control: tuple[ControlServer, zmq.asyncio.Context],
) -> None:
    server, ctx = control
    rogues = []
    for _ in range(4):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(server.endpoint)
        rogues.append(sock)
    half, huge, deaf, loud = rogues
    await half.send(b"", flags=zmq.SNDMORE)  # half a multipart message, then gone
    half.close()
    await huge.send_multipart([b"", b" " * (MAX_REQUEST_BYTES + 1)])  # its connection is closed unread
    for _ in range(2000):  # a flood whose answers it never reads
        await deaf.send_multipart([b"", b'{"command": "status"}'])
    await loud.send_multipart([b"", b"\xff\xfe not json"])
    assert await loud.poll(5000)
    reply = msgspec.json.decode((await loud.recv_multipart())[-1])
    assert reply == {"ok": False, "error": "the request is not JSON"}
    assert await call_endpoint(server.endpoint, "status", timeout=10) == {"workers": []}
    assert await call_endpoint(server.endpoint, "reshard", shards=4, timeout=10) == {
        "shards": 4,
        "dry_run": False,
    }
    with pytest.raises(CommandError, match="shards must be a whole number"):
        await call_endpoint(server.endpoint, "reshard", shards="many", timeout=10)


async def test_control_call_when_the_answer_is_not_a_control_answer_says_so(short: Path) -> None:
    ctx = zmq.asyncio.Context()
    fake = ctx.socket(zmq.ROUTER)
    fake.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{short}/fake.sock"
    fake.bind(endpoint)

    async def answer(bodies: list[bytes]) -> None:
        for body in bodies:
            identity, *_ = await fake.recv_multipart()
            await fake.send_multipart([identity, b"", body])

    server = asyncio.ensure_future(answer([b"garbage", b"[1, 2]", b'{"ok": false, "error": 7}']))
    try:
        for expected in ("with a control answer", "with a control answer", "^7$"):
            with pytest.raises(CommandError, match=expected):
                await call_endpoint(endpoint, "status", timeout=5)
        await server
    finally:
        server.cancel()
        fake.close()
        ctx.destroy(linger=0)


async def test_worker_link_when_a_worker_sends_garbage_drops_it_and_takes_the_next_message(
    short: Path,
) -> None:
    ctx = zmq.asyncio.Context()
    link = ZmqWorkerLink(ctx, RunDir(short).workers_endpoint)
    worker = ctx.socket(zmq.DEALER)
    try:
        link.bind()
        worker.setsockopt(zmq.IDENTITY, b"0:1")
        worker.setsockopt(zmq.LINGER, 0)
        worker.connect(link.endpoint)
        for _name, data in corpus("worker_link"):
            await worker.send(data)
        await worker.send_multipart([b"two", b"frames"])
        await worker.send(m.encode(m.Hello(0, 1, 1234)))
        assert await asyncio.wait_for(link.recv(), 10) == (b"0:1", m.Hello(0, 1, 1234))
        assert link.undecodable == len(corpus("worker_link")) + 1
    finally:
        worker.close()
        link.close()
        ctx.destroy(linger=0)
