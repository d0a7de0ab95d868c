"""The supervisor's control socket on TCP with CURVE, and the control call that reaches it: real
sockets in one process, a fake target behind the commands."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq.asyncio

from shardrunner.cluster.supervisor.commands import ControlServer, remote_refusal
from shardrunner.cluster.supervisor.status import ClusterStatus
from shardrunner.control import NEED_KEYS, CommandError, call_any, call_endpoint
from shardrunner.curve import CurveKeys
from tests.curve_keys import Keys, handshake, handshake_events, make_keys

ENDPOINTS = {"platforms": {}, "workers": [{"endpoint": "ipc:///x", "tcp": "tcp://h:1", "conns": []}]}


class Target:
    stopping = False
    stopped = False

    def status(self) -> ClusterStatus:
        raise CommandError("no status in this test")

    def endpoints(self) -> dict[str, Any]:
        return ENDPOINTS

    def request_reload(self) -> asyncio.Future[str]:
        raise AssertionError("reload over TCP")

    def request_stop(self) -> str:
        self.stopped = True
        return "stopping"

    async def reshard(self, shards: int | None, *, dry_run: bool, abort: bool) -> dict[str, Any]:
        raise AssertionError("reshard over TCP")

    def channels(self, action: str, names: list[str]) -> dict[str, Any]:
        raise AssertionError("channels over TCP")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ControlServer, Keys, Target]]:
    keys = make_keys(tmp_path)
    ctx = zmq.asyncio.Context()
    target = Target()
    server = ControlServer(
        ctx,
        f"ipc://{tmp_path}/control.sock",
        target,
        tcp=f"tcp://127.0.0.1:{free_port()}",
        curve=keys.server(),
    )
    server.bind()
    task = asyncio.ensure_future(server.serve())
    try:
        yield server, keys, target
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        ctx.destroy(linger=0)


async def test_control_on_tcp_when_the_bot_is_authorised_answers_endpoints(
    served: tuple[ControlServer, Keys, Target],
) -> None:
    server, keys, _ = served
    assert server.tcp_endpoint.startswith("tcp://127.0.0.1:")
    assert await call_endpoint(server.tcp_endpoint, "endpoints", curve=keys.bot(), timeout=5) == ENDPOINTS
    # The ipc socket answers as before.
    assert await call_endpoint(server.endpoint, "endpoints", timeout=5) == ENDPOINTS


async def test_control_on_tcp_when_asked_to_stop_refuses_with_the_sentence(
    served: tuple[ControlServer, Keys, Target],
) -> None:
    server, keys, target = served
    with pytest.raises(CommandError) as info:
        await call_endpoint(server.tcp_endpoint, "stop", curve=keys.bot(), timeout=5)
    assert str(info.value) == remote_refusal("stop")
    assert "only endpoints, status are" in str(info.value)
    assert not target.stopped
    assert await call_endpoint(server.endpoint, "stop", timeout=5) == {"message": "stopping"}


async def test_control_on_tcp_when_the_key_is_unknown_cannot_reach_it(
    served: tuple[ControlServer, Keys, Target],
) -> None:
    server, keys, _ = served
    with pytest.raises(CommandError) as info:
        await call_endpoint(server.tcp_endpoint, "endpoints", curve=keys.stranger(), timeout=2)
    assert f"cannot reach the control socket {server.tcp_endpoint}" in str(info.value)


async def test_control_on_tcp_when_the_key_is_wrong_or_missing_answers_nothing(
    served: tuple[ControlServer, Keys, Target],
) -> None:
    server, keys, _ = served
    bot, stranger = keys.bot(), keys.stranger()
    impostor = CurveKeys(bot.server_public, bot.public, stranger.secret)  # an authorised key, not its secret
    with pytest.raises(CommandError, match="cannot reach the control socket"):
        await call_endpoint(server.tcp_endpoint, "endpoints", curve=impostor, timeout=0.5)
    ctx = zmq.asyncio.Context()
    plain = ctx.socket(zmq.DEALER)  # no CURVE at all
    try:
        plain.setsockopt(zmq.LINGER, 0)
        monitor = handshake_events(plain)
        plain.connect(server.tcp_endpoint)
        await plain.send_multipart([b"", msgspec.json.encode({"command": "endpoints"})])
        assert await handshake(monitor) == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        assert not await plain.poll(0)
        plain.disable_monitor()
        monitor.close()
    finally:
        plain.close()
        ctx.term()


async def test_control_call_when_a_tcp_endpoint_has_no_keys_says_which_are_needed() -> None:
    with pytest.raises(CommandError) as info:
        await call_endpoint("tcp://127.0.0.1:1", "endpoints")
    assert str(info.value) == NEED_KEYS


async def test_control_call_any_when_the_first_endpoint_is_dead_uses_the_second(
    served: tuple[ControlServer, Keys, Target],
) -> None:
    server, keys, _ = served
    dead = f"tcp://127.0.0.1:{free_port()}"
    used, result = await call_any([dead, server.tcp_endpoint], "endpoints", curve=keys.bot(), timeout=2)
    assert (used, result) == (server.tcp_endpoint, ENDPOINTS)
    with pytest.raises(CommandError) as info:
        await call_any([dead], "endpoints", curve=keys.bot(), timeout=1)
    assert str(info.value).startswith("no control endpoint answered: cannot reach the control socket")
