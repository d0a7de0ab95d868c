"""Bots on other machines, end to end with real processes: two `shardrunner start` hosts sharing a
real redis-server, their workers' buses and control sockets on TCP with CURVE (keys made by
`shardrunner keys`), and bot processes given no run dir, so TCP with CURVE is their only way in.
Events are counted by (session, seq) against the simulator's sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
from zmq.auth.certs import load_certificate

from harness.procs import free_port
from shardrunner.sim.discord.server import Simulator
from tests.cluster.conftest import Bot, Cluster, accepted, shardrunner
from tests.cluster.test_bus_processes import assert_complete, quiesce
from tests.conftest import SimFactory, wait_for
from tests.redis_server import RedisServer

pytestmark = pytest.mark.timeout(120)
SHARDS = 4


class Host(Cluster):
    """A host whose output is read as it comes (a thread), so a test can look at it while it runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed by stop()
            for line in self.proc.stdout:
                self.lines.append(line.decode(errors="replace"))

    def text(self) -> str:
        return "".join(self.lines)


async def make_keys(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """The server pair and the bots `good` and `stranger`, by the CLI; only `good` authorised.
    Returns the keys directory, the authorised clients directory and what the CLI printed."""
    keys, clients = tmp_path / "keys", tmp_path / "bots"
    printed = []
    for args in (["server"], ["bot", "good"], ["bot", "stranger"]):
        done = await shardrunner("keys", *args, "--dir", str(keys), timeout=30)
        assert done.returncode == 0, done.stderr
        printed += [done.stdout, done.stderr]
    clients.mkdir()
    shutil.copy(keys / "good.key", clients / "good.key")
    return keys, clients, printed


def secret_of(path: Path) -> str:
    """The z85 secret key of a certificate file: what must never be printed."""
    _, secret = load_certificate(path)
    assert secret is not None
    return secret.decode()


def public_of(path: Path) -> str:
    public, _ = load_certificate(path)
    return public.decode()


async def test_bots_over_tcp_with_curve_get_every_hosts_events_and_a_stranger_gets_nothing(
    sim_factory: SimFactory,
    redis_server: RedisServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    sim: Simulator = await sim_factory(
        shards=SHARDS, guilds_per_shard=2, rate=50, identify_window=0.1, heartbeat_interval_ms=10_000
    )
    keys, clients, printed = await make_keys(tmp_path)
    ports = {"h1": free_port(), "h2": free_port()}
    curve = ["--curve-server-key", str(keys / "server.key_secret"), "--curve-clients", str(clients)]

    def host(name: str, port: int) -> Host:
        tcp = ["--bus-bind", "tcp://127.0.0.1", "--control-bind", f"tcp://127.0.0.1:{port}", *curve]
        hosts = ["--coordinator", redis_server.url, "--host-name", name, "--lease-ttl", "3"]
        return Host(sim, tmp_path / name, "--workers", "1", *hosts, *tcp)

    hosts = [host(name, port) for name, port in ports.items()]
    made: list[Bot] = []
    try:

        async def held() -> list[list[int]]:
            out = []
            for h in hosts:
                try:
                    out.append(list(((await h.status()).get("hosts") or {}).get("held") or []))
                except Exception:
                    out.append([])
            return out

        async def split() -> bool:
            blocks = await held()
            return all(blocks) and sorted(b for bs in blocks for b in bs) == list(range(SHARDS))

        await wait_for(split, 40, "every block held once, each host some")
        await wait_for(lambda: len(accepted(sim, "identifies")) == SHARDS, 20, "every shard identified")

        # The first control endpoint is a dead port: discovery goes on to the live hosts.
        control = ",".join(
            [f"tcp://127.0.0.1:{free_port()}", *(f"tcp://127.0.0.1:{p}" for p in ports.values())]
        )
        server_key = str(keys / "server.key")
        good = Bot(
            None, "--control", control, "--server-key", server_key, "--key", str(keys / "good.key_secret")
        )
        made.append(good)
        await good.wait_ready(30)
        await wait_for(
            lambda: {e["shard"] for e in good.events} == set(range(SHARDS)), 30, "events of every shard"
        )

        stranger = Bot(
            None, "--control", control, "--server-key", server_key, "--key", str(keys / "stranger.key_secret")
        )
        made.append(stranger)
        assert await asyncio.to_thread(stranger.proc.wait, 30) == 2, "no host answers an unauthorised key"
        assert not stranger.ready
        assert stranger.events == []
        assert stranger.refused is not None
        assert "refused this bot's CURVE key" in stranger.refused
        refused = (
            f"refused a bot from 127.0.0.1 with an unauthorised CURVE key {public_of(keys / 'stranger.key')}"
        )
        await wait_for(
            lambda: all(refused in h.text() for h in hosts), 10, "each host to say whom it refused"
        )

        live = await quiesce(sim, good)
        assert_complete(live, good)
        assert len(accepted(sim, "identifies")) == SHARDS
    finally:
        # The hosts first, while the bot still acknowledges: a stop does not wait on a drain to a
        # dead bot.
        await asyncio.gather(*(h.stop(grace=20) for h in hosts))
        for bot in made:
            bot.stop()

    # No secret key anywhere: the CLI's, the hosts' and the bots' output, the run dirs (worker logs, state).
    printed += [h.text() for h in hosts] + [capfd.readouterr().err]
    printed += [p.read_text(errors="replace") for h in hosts for p in h.run_dir.rglob("*") if p.is_file()]
    for name in ("server", "good", "stranger"):
        secret = secret_of(keys / f"{name}.key_secret")
        assert not [text for text in printed if secret in text], f"the {name} secret key was printed"
