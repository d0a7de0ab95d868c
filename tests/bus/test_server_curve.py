"""The worker's bus on TCP with CURVE (the worker's ``make_bus``), over real sockets in one process:
CURVE happens on the wire, so an authorised bot gets events and the others get nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from shardrunner.bus import protocol as p
from shardrunner.bus.server import BusServer
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.process import make_bus_maker
from shardrunner.curve import CurveKeys
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from tests.conftest import wait_for
from tests.curve_keys import Keys, handshake, handshake_events, make_keys

CONN = ConnKey("discord", 1, 3, 8)


class _Conns:
    async def command(self, command: p.Command) -> tuple[str | None, Any]:
        return None, None

    def state(self, platform: str) -> tuple[list[Any], list[p.StateMark]]:
        return [], []


@dataclass
class Bench:
    ctx: zmq.asyncio.Context
    server: BusServer
    keys: Keys
    posted: list[m.Message]

    def member(self, curve: CurveKeys | None) -> zmq.asyncio.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        if curve is not None:
            curve.apply(sock)
        return sock


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    keys = make_keys(tmp_path)
    ctx = zmq.asyncio.Context()
    curve = keys.server()
    auth = curve.authenticator(ctx)
    posted: list[m.Message] = []
    make_bus = make_bus_maker(ctx, tcp="tcp://127.0.0.1", curve=curve, post=posted.append)
    server = make_bus(m.Assign(parts=[], bus_endpoint=f"ipc://{tmp_path}/bus.sock"), _Conns())  # type: ignore[arg-type]
    assert isinstance(server, BusServer)
    task = asyncio.ensure_future(server.run())
    try:
        yield Bench(ctx, server, keys, posted)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        auth.stop()
        ctx.destroy(linger=0)


async def test_bus_on_tcp_when_made_binds_a_port_the_os_chose_and_posts_bus_bound(bench: Bench) -> None:
    endpoint = bench.server.tcp_endpoint
    assert endpoint.startswith("tcp://127.0.0.1:")
    assert not endpoint.endswith(":*")
    assert bench.posted == [m.BusBound(endpoint)]
    server, bot = bench.keys.server(), bench.keys.bot()
    assert server.secret.decode() not in repr(server)
    assert bot.secret.decode() not in repr(bot)


async def test_bus_on_tcp_when_the_bot_key_is_authorised_delivers_events(bench: Bench) -> None:
    member = bench.member(bench.keys.bot())
    member.connect(bench.server.tcp_endpoint)
    await member.send(p.encode(p.Join("g", "m")))
    await wait_for(lambda: "g" in bench.server.router.groups, 10, "the member's join over TCP")
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    assert await member.poll(5000), "no batch over TCP"
    batch = p.decode(await member.recv())
    assert isinstance(batch, p.Batch)
    assert [e.seq for e in batch.events] == [1]
    # A command's answer goes back on the TCP socket too.
    await member.send(p.encode(p.Command(9, "discord", {}, conn=CONN)))
    assert await member.poll(5000), "no command result over TCP"
    assert p.decode(await member.recv()) == p.CommandResult(9, True, None)
    member.close()


async def test_bus_on_tcp_when_the_key_is_unknown_refuses_and_logs_once(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shardrunner.curve")
    strangers = [bench.member(bench.keys.stranger()) for _ in range(2)]
    for sock in strangers:
        monitor = handshake_events(sock)
        sock.connect(bench.server.tcp_endpoint)
        await sock.send(p.encode(p.Join("g", "stranger")))
        assert await handshake(monitor) == zmq.EVENT_HANDSHAKE_FAILED_AUTH
        sock.disable_monitor()
        monitor.close()
    refused = [r.getMessage() for r in caplog.records if "refused a bot" in r.getMessage()]
    public = bench.keys.stranger().public.decode()
    assert refused == [
        f"refused a bot from 127.0.0.1 with an unauthorised CURVE key {public}: its public key is not in "
        f"{bench.keys.clients}"
    ]
    secret = bench.keys.stranger().secret.decode()
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert bench.server.router.groups == {}
    for sock in strangers:
        assert not await sock.poll(0)
        sock.close()


async def test_bus_on_tcp_when_the_bot_has_no_curve_gets_nothing(bench: Bench) -> None:
    plain = bench.member(None)
    monitor = handshake_events(plain)
    plain.connect(bench.server.tcp_endpoint)
    await plain.send(p.encode(p.Join("g", "plain")))
    assert await handshake(monitor) == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    plain.disable_monitor()
    monitor.close()
    assert bench.server.router.groups == {}
    plain.close()


async def test_bus_on_tcp_when_a_local_member_joins_the_ipc_socket_still_serves_it(bench: Bench) -> None:
    local = bench.member(None)
    local.connect(bench.server.endpoint)
    await local.send(p.encode(p.Join("g", "local")))
    await wait_for(lambda: "g" in bench.server.router.groups, 10, "the local member's join")
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    assert await local.poll(5000)
    assert isinstance(p.decode(await local.recv()), p.Batch)
    local.close()


async def test_bus_on_tcp_when_a_bot_has_a_wrong_key_pair_or_server_key_gets_nothing(bench: Bench) -> None:
    bot, stranger = bench.keys.bot(), bench.keys.stranger()
    wrong = {
        "impostor": CurveKeys(
            bot.server_public, bot.public, stranger.secret
        ),  # an authorised key, not its secret
        "lost": CurveKeys(stranger.public, bot.public, bot.secret),  # trusts another server
    }
    socks = [bench.member(curve) for curve in wrong.values()]
    for sock, name in zip(socks, wrong, strict=True):
        sock.connect(bench.server.tcp_endpoint)
        await sock.send(p.encode(p.Join(name, name)))
    good = bench.member(bot)  # after them, on the same endpoint: its join is what the server got
    good.connect(bench.server.tcp_endpoint)
    await good.send(p.encode(p.Join("good", "good")))
    await wait_for(lambda: "good" in bench.server.router.groups, 10, "the authorised bot's join")
    bench.server.publish(Event(CONN, "s", 1, "MESSAGE_CREATE", 7, b"{}"))
    assert await good.poll(5000)
    assert set(bench.server.router.groups) == {"good"}
    for sock in (*socks, good):
        assert not await sock.poll(0) or sock is good
        sock.close()
