"""The real worker link: a ROUTER that knows workers by SLOT:GENERATION."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import zmq
import zmq.asyncio

from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor.link import ZmqWorkerLink
from shardrunner.rundir import RunDir


async def test_link_when_a_worker_connects_carries_messages_both_ways_and_refuses_unknown_ones() -> None:
    where = Path(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
    ctx = zmq.asyncio.Context()
    link = ZmqWorkerLink(ctx, RunDir(where).workers_endpoint)
    worker = ctx.socket(zmq.DEALER)
    try:
        link.bind()
        worker.setsockopt(zmq.IDENTITY, b"0:1")
        worker.setsockopt(zmq.LINGER, 0)
        worker.connect(link.endpoint)
        await worker.send(b"not msgpack")  # logged and skipped
        await worker.send(m.encode(m.Hello(0, 1, 1234)))
        assert await link.recv() == (b"0:1", m.Hello(0, 1, 1234))
        assert link.send(b"0:1", m.Ping(7))
        assert m.decode(await worker.recv()) == m.Ping(7)
        assert not link.send(b"9:9", m.Ping(8)), "no such worker"
    finally:
        worker.close()
        link.close()
        ctx.term()
        shutil.rmtree(where, ignore_errors=True)
    assert not link.send(b"0:1", m.Ping(9)), "closed"
