"""No secret in anything a real cluster shows: a `shardrunner start` with a Discord token, a Twitch
account's OAuth token, a Redis coordinator behind a password, CURVE keys on TCP endpoints and
metrics, all at debug level, through a controller whose hooks raise with what they were given (their
tracebacks in the workers' logs), a worker killed with SIGKILL, bad settings and a stop. Its output, the CLI's
(status, status --json, status over TCP, the errors), a metrics scrape, every process's command
line, every file of the run dir and every key in Redis are scanned with `harness.secrets` for every
form of each secret. The run dir is the user's alone: the directory 0700, its sockets, logs and state file
closed to others too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import stat
import subprocess
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest
import redis as redis_sync
from click.testing import CliRunner

from harness.cluster import ClusterProcess
from harness.procs import free_port
from harness.secrets import Secret, collect_run_outputs, process_cmdlines, process_tree, scan
from shardrunner.cli import main
from shardrunner.sim.discord.world import make_token
from tests.cluster.conftest import shardrunner
from tests.conftest import SimFactory, wait_for
from tests.curve_keys import make_keys
from tests.redis_server import RedisServer
from tests.sim.twitch.helpers import running

pytestmark = pytest.mark.timeout(90)
SHARDS = 2
CHANNELS = ("chan0", "chan1")


async def test_cluster_when_run_with_every_secret_shows_none_of_them(
    sim_factory: SimFactory, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    token = make_token(1100000000000000001, secrets.token_urlsafe(6), secrets.token_urlsafe(27))
    oauth = secrets.token_hex(15)
    password = f"pw {secrets.token_urlsafe(12)}/+"
    keys = make_keys(tmp_path)
    guarded = [
        Secret.discord_token("the Discord token", token),
        Secret("the Twitch OAuth token", oauth),
        Secret("the Redis password", password),
        *(
            Secret.curve_key_file(f"the {n} secret key", keys.dir / f"{n}.key_secret")
            for n in ("server", "bot")
        ),
    ]
    sim = await sim_factory(shards=SHARDS, token=token, identify_window=0.1, heartbeat_interval_ms=10_000)
    outputs: dict[str, str | bytes] = {}
    metrics_port, control_port = free_port(), free_port()
    run_dir = tmp_path / "run"
    redis = RedisServer(tmp_path, password=password)
    async with running(channels=CHANNELS, accounts={"secbot": oauth}, rate=5.0) as twitch, stopped(redis):
        cluster = ClusterProcess(
            sim.url + "/api/v10",
            "--platforms", "discord,twitch", "--twitch-url", twitch.ws_url,
            "--twitch-channels", ",".join(CHANNELS), "--no-twitch-anonymous",
            "--workers", "2", "--identify-window", "0.1", "--hung-after", "5", "--log-level", "debug",
            "--lease-ttl", "3", "--metrics-port", str(metrics_port),
            "--bus-bind", "tcp://127.0.0.1", "--control-bind", f"tcp://127.0.0.1:{control_port}",
            "--curve-server-key", str(keys.server_secret), "--curve-clients", str(keys.clients),
            "--controller", "tests/cluster/leaky_controller.py:Leaky",
            token=token, run_dir=run_dir, shards=SHARDS, output=True,
            env={
                "SHARDRUNNER_TWITCH_ACCOUNTS": f"secbot:oauth:{oauth}",
                "SHARDRUNNER_COORDINATOR": f"redis://127.0.0.1:{redis.port}/0",
                "SHARDRUNNER_COORDINATOR_PASSWORD": password,
            },
        )  # fmt: skip
        printed = Printed(cluster)
        try:
            first = await all_ready(cluster, 40)
            outputs.update(await cli_outputs(run_dir, password, token, control_port, keys.dir))
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp,
            ):
                assert resp.status == 200
                outputs["metrics"] = await resp.text()
            outputs.update(process_cmdlines(process_tree(cluster.pid)))

            victim = first["workers"][0]["pid"]
            os.kill(victim, signal.SIGKILL)
            await wait_for(lambda: replaced(cluster, victim), 30, "the killed worker replaced, all ready")
            outputs.update(process_cmdlines(process_tree(cluster.pid)))
            outputs["status after the kill"] = (await shardrunner("status", "--run-dir", str(run_dir))).stdout
            assert_private(run_dir)
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):  # its last lines read before stop() closes
                cluster.proc.terminate()
                await asyncio.to_thread(cluster.proc.wait, 20)
            printed.join()
            await cluster.stop(grace=5)
        outputs["the coordinator's keys"] = redis_contents(redis.port, password)  # once the stop wrote it
    outputs["the cluster's output"] = printed.text()
    outputs["this test's captured output"] = capfd.readouterr().err
    logs = worker_logs(run_dir)
    assert "controller Leaky.identify raised RuntimeError" in logs
    assert "controller Leaky.twitch_login raised RuntimeError" in logs
    assert "Traceback" in logs, "the controller's failures came with their tracebacks"
    assert (run_dir / "sessions.json").stat().st_mode & 0o777 == 0o600, "the stop wrote the state file"
    assert b"sessions" in outputs["the coordinator's keys"], "and the sessions in Redis"

    leaks = scan(guarded, files=collect_run_outputs(run_dir), texts=outputs)
    assert not leaks, "secrets shown:\n" + "\n".join(map(str, leaks))


@contextlib.asynccontextmanager
async def stopped(redis: RedisServer) -> AsyncIterator[None]:
    """``redis`` running, and stopped whatever happens."""
    redis.start()
    try:
        yield
    finally:
        redis.stop()


class Printed:
    """What a process prints, read as it comes (a debug-level supervisor fills a pipe's buffer)."""

    def __init__(self, process: ClusterProcess) -> None:
        self.lines: list[bytes] = []
        self._thread = threading.Thread(target=self._read, args=(process.proc.stdout,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(ValueError, OSError):  # closed by stop()
            for line in stream:
                self.lines.append(line)

    def join(self) -> None:
        self._thread.join(5)

    def text(self) -> str:
        return b"".join(self.lines).decode(errors="replace")


async def all_ready(cluster: ClusterProcess, timeout: float) -> dict[str, Any]:
    """The status once the Discord shards and the Twitch connections are all ready."""
    deadline = time.monotonic() + timeout
    while True:
        assert cluster.proc.poll() is None, f"the cluster exited with {cluster.proc.returncode}"
        try:
            status = await cluster.status()
        except Exception:
            status = {}
        rows = status.get("shards") or []
        platforms = {r["conn"].split(":")[0] for r in rows}
        if platforms == {"discord", "twitch"} and all(r["state"] == "ready" for r in rows):
            return status
        assert time.monotonic() < deadline, f"not ready after {timeout} s: {[r['state'] for r in rows]}"
        await asyncio.sleep(0.1)


async def replaced(cluster: ClusterProcess, victim: int) -> bool:
    try:
        status = await cluster.status()
    except Exception:
        return False
    pids = [w["pid"] for w in status["workers"]]
    return victim not in pids and all(r["state"] == "ready" for r in status["shards"])


async def cli_outputs(
    run_dir: Path, password: str, token: str, control_port: int, keys: Path
) -> dict[str, str]:
    """What the CLI prints: status as text (locally and over TCP) from real processes, and, in this
    process (to spare a start-up each), the JSON status and errors of settings holding secrets."""
    quoted = urllib.parse.quote(password, safe="")
    other = str(run_dir.parent / "other")
    processes = {
        "status": ("status", "--run-dir", str(run_dir)),
        "status over TCP": (
            "status", "--control", f"tcp://127.0.0.1:{control_port}",
            "--server-key", str(keys / "server.key"), "--key", str(keys / "bot.key_secret"),
        ),
    }  # fmt: skip
    failing = {
        "a Redis URL with a bad port": (
            "start", "--sim", "--run-dir", other, "--coordinator", f"redis://:{quoted}@127.0.0.1:x/0",
        ),
        "an unreachable Redis": ("hosts", "list", "--coordinator", f"redis://:{quoted}@127.0.0.1:1/0"),
        "a token that is not one": ("start", "--run-dir", other, "--token", f"{token}.extra"),
    }  # fmt: skip
    done = await asyncio.gather(
        *(shardrunner(*args, timeout=60) for args in processes.values()),
        asyncio.to_thread(lambda: [CliRunner().invoke(main, list(args)) for args in failing.values()]),
    )
    out = {}
    for name, result in zip(processes, done[:-1], strict=True):
        assert result.returncode == 0, f"{name}: {result.returncode}\n{result.stderr}"
        out[name] = result.stdout + result.stderr
    for name, invoked in zip(failing, done[-1], strict=True):
        assert invoked.exit_code != 0, f"{name}: {invoked.output}"
        assert "Traceback" not in invoked.output
        out[name] = invoked.output
    out["status --json"] = (
        await asyncio.to_thread(CliRunner().invoke, main, ["status", "--json", "--run-dir", str(run_dir)])
    ).output
    assert "secbot" in out["status"]
    assert "secbot" in out["status over TCP"]
    assert "discord:1/2" in out["status --json"]
    assert "its port a number" in out["a Redis URL with a bad port"]
    assert "unreachable" in out["an unreachable Redis"]
    assert "invalid setting token" in out["a token that is not one"]
    return out


def redis_contents(port: int, password: str) -> bytes:
    """Every key of the coordinator and its value, one per line (sessions, leases, hosts...)."""
    client = redis_sync.Redis(port=port, password=password)
    lines = []
    for key in client.scan_iter():
        kind = client.type(key)
        value: Any = {
            b"string": client.get,
            b"hash": client.hgetall,
            b"list": lambda k: client.lrange(k, 0, -1),
            b"set": client.smembers,
            b"zset": lambda k: client.zrange(k, 0, -1, withscores=True),
            b"stream": lambda k: client.xrange(k),
        }.get(kind, lambda k: b"")(key)
        lines.append(key + b" " + repr(value).encode())
    client.close()
    return b"\n".join(lines)


def worker_logs(run_dir: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(run_dir.glob("worker-*.log")))


def assert_private(run_dir: Path) -> None:
    """The run dir 0700; its sockets and logs the user's only besides (the pid file says nothing)."""
    assert run_dir.stat().st_mode & 0o777 == 0o700
    socks = [p for p in run_dir.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]
    names = {p.name for p in socks}
    assert {"control.sock", "workers.sock"} <= names
    assert len(names) >= 4, names  # and a bus per worker
    for path in [*socks, *run_dir.glob("worker-*.log")]:
        assert path.lstat().st_mode & 0o077 == 0, f"{path.name} is open to others"
