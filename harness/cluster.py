"""A `shardrunner start` process: started with given arguments, watched through its status
command and its worker processes, and stopped with every worker it ever had."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from harness.procs import NotReady, Process, cpu_of
from shardrunner.control import CommandError, call


class ClusterProcess(Process):
    """``shardrunner start --api-url API_URL --run-dir RUN_DIR --progress never ARGS``.

    ``run_dir=None`` makes a temporary run dir, removed by ``stop()``. ``shards``, when given, is
    passed as ``--shards`` and is what ``wait_ready()`` waits for by default. ``started`` is the
    monotonic time just before the process was spawned (``wait_ready`` counts from it). Pids of
    workers are collected from the status command and from the supervisor's children, and killed
    on stop even if the supervisor is gone.
    """

    #: Seconds a status call may take.
    status_timeout: float = 10

    def __init__(
        self,
        api_url: str | None,
        *args: str,
        token: str | None,
        run_dir: Path | None = None,
        shards: int | None = None,
        env: dict[str, str] | None = None,
        output: bool = False,
        log: Path | None = None,
    ) -> None:
        """``api_url`` and ``token`` None: a cluster without Discord (``--platforms twitch``);
        ``log``: its stdout and stderr appended to that file."""
        self._own_run_dir = run_dir is None
        self.run_dir = Path(tempfile.mkdtemp(prefix="sr-cluster-")) if run_dir is None else run_dir
        self.shards = shards
        command = [
            sys.executable, "-m", "shardrunner", "start",
            *(["--api-url", api_url] if api_url is not None else []),
            "--run-dir", str(self.run_dir), "--progress", "never",
            *(["--shards", str(shards)] if shards is not None else []), *args,
        ]  # fmt: skip
        secret = {"SHARDRUNNER_TOKEN": token} if token is not None else {}
        super().__init__(command, env={**secret, **(env or {})}, output=output, log=log)
        self.supervisor = psutil.Process(self.proc.pid)

    def workers(self) -> list[psutil.Process]:
        """The supervisor's worker processes now (remembered in ``seen``)."""
        procs = []
        with contextlib.suppress(psutil.Error):
            for p in self.supervisor.children():
                with contextlib.suppress(psutil.Error):
                    if "shardrunner.cluster.worker" in " ".join(p.cmdline()):
                        procs.append(p)
                        self.seen.add(p.pid)
        return procs

    def remember(self) -> None:
        self.workers()

    def cpu(self) -> dict[int, float]:
        """CPU seconds so far of the supervisor and each worker, by pid."""
        out = {}
        for p in [self.supervisor, *self.workers()]:
            with contextlib.suppress(psutil.Error):
                out[p.pid] = cpu_of(p)
        return out

    async def status(self) -> dict[str, Any]:
        """The status command's answer (raises ``CommandError`` while the cluster cannot answer)."""
        result: dict[str, Any] = await call(self.run_dir, "status", timeout=self.status_timeout)
        self.seen.update(int(w["pid"]) for w in result["workers"])
        return result

    async def wait_ready(
        self, shards: int | None = None, *, timeout: float = 600, interval: float = 0.05
    ) -> float:
        """Seconds from ``started`` until exactly ``shards`` shards (default ``self.shards``) are all
        ready, asking the status command every ``interval`` seconds. Raises ``NotReady`` when the
        process exits or ``timeout`` passes first."""
        want = self.shards if shards is None else shards
        if want is None:
            raise ValueError("wait_ready() needs a shard count: none was given to start with")
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise NotReady(f"the cluster stopped with status {self.proc.returncode}")
            try:
                status = await self.status()
            except CommandError:
                await asyncio.sleep(interval)
                continue
            states = [s["state"] for s in status["shards"]]
            ready = states.count("ready")
            if ready == want and len(states) == want:
                return time.monotonic() - self.started
            await asyncio.sleep(interval)
        raise NotReady(f"only {ready}/{want} shards ready after {timeout:.0f} s")

    def _clean_up(self) -> None:
        super()._clean_up()
        if self._own_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)
