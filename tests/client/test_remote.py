"""The client in TCP mode: control endpoints elsewhere (the first dead: the next is used), the hosts
the answer names as fallbacks, and a worker's CURVE bus on TCP. Real sockets in one process: a
ControlServer and a BusServer, as a host runs them, with their authenticator."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio

from shardrunner.bus.router import Router
from shardrunner.bus.server import BusServer
from shardrunner.client import Client, ClientError
from shardrunner.client.remote import Discovery
from shardrunner.cluster.supervisor.commands import ControlServer
from shardrunner.cluster.supervisor.status import ClusterStatus
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for
from tests.curve_keys import Keys, make_keys

CONN = ConnKey("discord", 0, 0, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Host:
    keys: Keys
    control: ControlServer
    bus: BusServer
    other_host: str

    def status(self) -> ClusterStatus:
        raise AssertionError("not asked")

    def endpoints(self) -> dict[str, Any]:
        worker = {"slot": 0, "generation": 0, "endpoint": self.bus.endpoint, "tcp": self.bus.tcp_endpoint}
        return {
            "platforms": {"discord": {"shards": 1}},
            "workers": [{**worker, "conns": [str(CONN)]}],
            "hosts": [
                {"name": "a", "control": self.control.tcp_endpoint},
                {"name": "b", "control": self.other_host},
            ],
        }


@pytest.fixture
async def host(tmp_path: Path) -> AsyncIterator[Host]:
    keys = make_keys(tmp_path)
    ctx = zmq.asyncio.Context()
    curve = keys.server()

    async def commands(_: object) -> tuple[str | None, Any]:
        return None, None

    bus = BusServer(ctx, f"ipc://{tmp_path}/bus.sock", Router(), commands, tcp="tcp://127.0.0.1", curve=curve)
    control = ControlServer(
        ctx,
        f"ipc://{tmp_path}/control.sock",
        None,
        tcp=f"tcp://127.0.0.1:{free_port()}",
        curve=curve,  # type: ignore[arg-type]
    )
    the_host = Host(keys, control, bus, f"tcp://127.0.0.1:{free_port()}")
    control.target = the_host  # type: ignore[assignment]
    control.bind()  # starts the context's authenticator, which the bus shares
    bus.bind()
    tasks = [asyncio.ensure_future(control.serve()), asyncio.ensure_future(bus.run())]
    try:
        yield the_host
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        bus.close()
        control.close()
        ctx.destroy(linger=0)


async def test_client_on_tcp_when_the_first_control_endpoint_is_dead_uses_the_second_and_gets_events(
    host: Host, tmp_path: Path
) -> None:
    dead = f"tcp://127.0.0.1:{free_port()}"
    client = Client(
        tmp_path / "nowhere",
        group="g",
        control=[dead, host.control.tcp_endpoint],
        server_key=str(host.keys.server_public),
        key=str(host.keys.bot_secret),
    )
    await client.start()
    try:
        assert client.conns == [CONN]
        assert client.discovery.last == host.control.tcp_endpoint
        # The answer's hosts are the fallbacks of the next discoveries, after the one that answered.
        assert client.discovery.order() == [host.control.tcp_endpoint, host.other_host, dead]
        await wait_for(lambda: "g" in host.bus.router.groups, 10, "the join over TCP")
        host.bus.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
        event = await asyncio.wait_for(client.next_event(), 10)
        assert (event.conn, event.seq) == (CONN, 1)
    finally:
        await client.close()


async def test_client_on_tcp_when_keys_come_from_the_environment_reads_them(
    host: Host, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHARDRUNNER_CONTROL", f" {host.control.tcp_endpoint} ,")
    monkeypatch.setenv("SHARDRUNNER_SERVER_KEY", str(host.keys.server_public))
    monkeypatch.setenv("SHARDRUNNER_BOT_KEY", str(host.keys.bot_secret))
    client = Client(tmp_path / "nowhere", group="g")
    assert client.discovery.control == [host.control.tcp_endpoint]
    await client.start()
    try:
        assert client.conns == [CONN]
    finally:
        await client.close()


async def test_client_on_tcp_when_no_endpoint_answers_says_why(host: Host, tmp_path: Path) -> None:
    dead = f"tcp://127.0.0.1:{free_port()}"
    client = Client(
        tmp_path / "nowhere",
        control=dead,
        server_key=str(host.keys.server_public),
        key=str(host.keys.stranger_secret),
    )
    with pytest.raises(
        ClientError, match=f"no control endpoint answered: cannot reach the control socket {dead}"
    ):
        await client.start()
    await client.close()


def test_discovery_when_control_is_given_without_keys_says_which_are_needed(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="control endpoints on TCP need CURVE keys"):
        Discovery(tmp_path, "tcp://127.0.0.1:1", env={})


def test_discovery_when_local_picks_the_ipc_endpoint_and_remote_the_tcp_one(
    host: Host, tmp_path: Path
) -> None:
    worker = {"endpoint": "ipc:///run/bus.sock", "tcp": "tcp://h:5"}
    assert Discovery(tmp_path, env={}).worker_endpoint(worker) == "ipc:///run/bus.sock"
    remote = Discovery(tmp_path, "tcp://h:1", str(host.keys.server_public), str(host.keys.bot_secret), env={})
    assert remote.worker_endpoint(worker) == "tcp://h:5"
    assert remote.worker_endpoint({"endpoint": "ipc:///other-host.sock"}) is None
    assert host.keys.bot().secret.decode() not in repr(remote.curve)


@dataclass
class LocalHost:
    """A host's control socket in its own run dir (local mode: ipc only), answering ``endpoints``
    with every host's ``local`` endpoint as the hosts' records hold them."""

    name: str
    run_dir: Path
    hosts: list[dict[str, str]]

    def status(self) -> ClusterStatus:
        raise AssertionError("not asked")

    def endpoints(self) -> dict[str, Any]:
        return {"platforms": {}, "workers": [], "hosts": self.hosts, "answered_by": self.name}


async def test_discovery_in_local_mode_when_its_supervisor_is_gone_asks_the_other_hosts(
    tmp_path: Path,
) -> None:
    # Found by the chaos soak: a bot on one machine whose run dir's supervisor was killed never
    # learned of the hosts that took its blocks, and stopped receiving anything.
    ctx = zmq.asyncio.Context()
    dirs = {n: tmp_path / n for n in ("a", "b")}
    for d in dirs.values():
        d.mkdir()
    records = [{"name": n, "control": "", "local": f"ipc://{d}/control.sock"} for n, d in dirs.items()]
    servers = []
    for n, d in dirs.items():
        server = ControlServer(ctx, f"ipc://{d}/control.sock", LocalHost(n, d, records))  # type: ignore[arg-type]
        server.bind()
        servers.append((server, asyncio.ensure_future(server.serve())))
    try:
        discovery = Discovery(dirs["a"], env={})
        assert (await discovery.ask("endpoints"))["answered_by"] == "a"
        assert discovery.local_hosts == [records[1]["local"]], "the others, not itself"
        # a's supervisor is killed: its pid file names a dead process.
        (dirs["a"] / "supervisor.pid").write_text("999999999")
        assert (await discovery.ask("endpoints"))["answered_by"] == "b"
        assert discovery.last == records[1]["local"]
    finally:
        for server, task in servers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            server.close()
        ctx.destroy(linger=0)
