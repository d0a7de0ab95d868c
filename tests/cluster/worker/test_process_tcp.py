"""The worker's life with ``--bus-bind``: it binds a CURVE bus on TCP beside its ipc one and tells
the supervisor where (BusBound); without usable keys it does not start. The worker's ``run`` in this
process against a supervisor's ROUTER socket."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import zmq.asyncio

from shardrunner.cluster import messages as m
from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.cluster.worker.process import run
from tests.curve_keys import make_keys


async def _receive(sock: zmq.asyncio.Socket) -> m.Message:
    assert await sock.poll(10_000), "nothing from the worker"
    _, data = await sock.recv_multipart()
    return m.decode(data)


async def test_worker_when_bus_bind_is_given_binds_tcp_and_says_bus_bound(tmp_path: Path) -> None:
    keys = make_keys(tmp_path)
    ctx = zmq.asyncio.Context()
    sup = ctx.socket(zmq.ROUTER)
    sup.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{tmp_path}/workers.sock"
    sup.bind(endpoint)
    worker = asyncio.ensure_future(
        run(
            endpoint,
            0,
            1,
            bus_bind="tcp://127.0.0.1",
            curve_server_key=str(keys.server_secret),
            curve_clients=str(keys.clients),
        )
    )
    try:
        assert isinstance(await _receive(sup), m.Hello)
        assign = m.Assign(parts=[], bus_endpoint=f"ipc://{tmp_path}/bus-0-1.sock")
        await sup.send_multipart([b"0:1", m.encode(assign)])
        bound = await _receive(sup)
        while not isinstance(bound, m.BusBound):
            bound = await _receive(sup)
        assert bound.endpoint.startswith("tcp://127.0.0.1:")
        assert (tmp_path / "bus-0-1.sock").exists()
        await sup.send_multipart([b"0:1", m.encode(m.Handoff(exit=True))])
        assert await asyncio.wait_for(worker, 10) == 0
    finally:
        worker.cancel()
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
        sup.close()
        ctx.term()


async def test_worker_when_the_keys_cannot_be_read_does_not_start(tmp_path: Path) -> None:
    code = await run(
        f"ipc://{tmp_path}/w.sock", 0, 1, bus_bind="tcp://127.0.0.1",
        curve_server_key=str(tmp_path / "missing.key_secret"), curve_clients=str(tmp_path),
    )  # fmt: skip
    assert code == BOOT_FAILED
