"""A bot process: a program that joins the cluster's bus through `shardrunner.client` and prints
JSON lines (`harness.lines`), read here as they come."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from harness.procs import REPO, NotReady, close


class BotProcess:
    """``python -m MODULE --run-dir RUN_DIR ARGS`` (no ``--run-dir`` when ``run_dir`` is None: a bot
    that reaches the cluster over TCP only), its stdout read by a thread (its stderr is ours).

    Every line that is a JSON object goes to ``on_record``: here a ``{"gap": ...}`` is kept in
    ``gaps`` and a ``{"ready": ...}`` sets ``ready`` (and ``ready_at``, the bot's monotonic time, if
    it says ``t``); subclasses take the rest. ``spawned`` is the monotonic time just before the
    spawn, ``killed_at`` just after a SIGKILL sent by ``kill()``.
    """

    def __init__(self, module: str, run_dir: Path | None, *args: str) -> None:
        where = ["--run-dir", str(run_dir)] if run_dir is not None else []
        command = [sys.executable, "-m", module, *where, *args]
        self.gaps: list[dict[str, Any]] = []
        self.ready = False
        self.ready_at: float | None = None
        self.killed_at: float | None = None
        self.spawned = time.monotonic()
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                self.on_record(record)

    def on_record(self, record: dict[str, Any]) -> None:
        if "gap" in record:
            self.gaps.append(record["gap"])
        elif record.get("ready"):
            if "t" in record:
                self.ready_at = float(record["t"])
            self.ready = True

    async def wait_ready(self, timeout: float = 60) -> None:
        """Until the bot said it joined; ``NotReady`` if it exits or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not self.ready:
            if self.proc.poll() is not None:
                raise NotReady(f"the bot process exited with status {self.proc.returncode} before joining")
            if time.monotonic() > deadline:
                raise NotReady(f"the bot did not join within {timeout:.0f} s")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL (noting ``killed_at``) and reap."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.killed_at = time.monotonic()
        self.proc.wait(10)

    async def terminate(self, timeout: float = 20) -> None:
        """SIGTERM, up to ``timeout`` seconds to exit (waited in a thread), then ``kill()``; the
        reader has read everything it printed when this returns."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, timeout)
        self.kill()
        await asyncio.to_thread(self._reader.join, 5)

    def stop(self) -> None:
        """Kill it, finish reading, close its pipe."""
        self.kill()
        self._reader.join(5)
        close(self.proc.stdout)
