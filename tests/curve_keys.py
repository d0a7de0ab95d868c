"""CURVE keys for the tests of TCP endpoints: the server's pair, an authorised bot, a stranger."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.asyncio
from zmq.auth.certs import create_certificates
from zmq.utils.monitor import parse_monitor_message

from shardrunner.curve import CurveKeys, CurveServer


@dataclass(frozen=True)
class Keys:
    dir: Path
    clients: Path
    server_secret: Path
    server_public: Path
    bot_secret: Path
    stranger_secret: Path

    def server(self) -> CurveServer:
        return CurveServer.load(self.server_secret, self.clients)

    def bot(self) -> CurveKeys:
        return CurveKeys.load(self.server_public, self.bot_secret)

    def stranger(self) -> CurveKeys:
        return CurveKeys.load(self.server_public, self.stranger_secret)


def make_keys(tmp_path: Path) -> Keys:
    keys, clients = tmp_path / "keys", tmp_path / "bots"
    keys.mkdir()
    clients.mkdir()
    create_certificates(keys, "server")
    bot_public, bot_secret = create_certificates(keys, "bot")
    create_certificates(keys, "stranger")
    Path(clients / "bot.key").write_bytes(Path(bot_public).read_bytes())
    for secret in keys.glob("*.key_secret"):
        secret.chmod(0o600)  # as `shardrunner keys` writes them
    return Keys(keys, clients, keys / "server.key_secret", keys / "server.key", Path(bot_secret),
                keys / "stranger.key_secret")  # fmt: skip


def handshake_events(sock: zmq.Socket[bytes]) -> zmq.Socket[bytes]:
    """A monitor socket of ``sock``'s handshake outcomes."""
    events = (
        zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_HANDSHAKE_FAILED_AUTH | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    )
    return sock.get_monitor_socket(events)


async def handshake(monitor: zmq.asyncio.Socket, timeout: float = 10.0) -> int:
    """The next handshake outcome the monitor reports."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no handshake outcome"
        assert await monitor.poll(int(left * 1000)), "no handshake outcome"
        event = parse_monitor_message(await monitor.recv_multipart())["event"]
        if event & (
            zmq.EVENT_HANDSHAKE_SUCCEEDED
            | zmq.EVENT_HANDSHAKE_FAILED_AUTH
            | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
        ):
            return int(event)
