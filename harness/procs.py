"""A child process that is stopped without blocking an event loop, and the helpers around it:
free ports, CPU seconds by process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import psutil

#: The repository's root: every child runs there, so `python -m tests...` and `-m benchmarks...` resolve.
REPO = Path(__file__).resolve().parent.parent


class NotReady(RuntimeError):
    """A process stopped, or did not get ready by its deadline."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_cpu() -> float:
    """User + system CPU seconds this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def cpu_of(proc: psutil.Process) -> float:
    """User + system CPU seconds a process has used."""
    t = proc.cpu_times()
    return float(t.user + t.system)


class Process:
    """A child process (``Popen`` as ``proc``) and every other pid it was seen to own (``seen``).

    ``stop()`` (async) and ``stop_sync()`` send SIGTERM, give it ``grace`` seconds, SIGKILL it,
    then SIGKILL every pid in ``seen``. The async stop waits in a thread: a caller's loop may run
    a simulator that must answer the child while it stops (a blocking wait there made each stop run
    into the close timeouts). ``output=True`` keeps stdout and stderr together in a pipe; ``log``
    appends both to that file instead (what a long run keeps without anyone reading a pipe).
    """

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        output: bool = False,
        log: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.seen: set[int] = set()
        self.started = time.monotonic()
        sink: int | IO[bytes] | None = subprocess.PIPE if output else None
        if log is not None:
            sink = open(log, "ab")  # noqa: SIM115 - the child has its own copy once spawned
        try:
            self.proc = subprocess.Popen(
                self.command,
                cwd=REPO,
                stdout=sink,
                stderr=subprocess.STDOUT if output or log is not None else None,
                env={**os.environ, **(env or {})},
            )
        finally:
            if log is not None and not isinstance(sink, int) and sink is not None:
                sink.close()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def remember(self) -> None:
        """Add the pids this process owns right now to ``seen`` (none here; subclasses know theirs)."""

    async def exit_code(self, timeout: float = 30) -> int:
        """Wait (in a thread) until the process exits; its status."""
        return int(await asyncio.to_thread(self.proc.wait, timeout))

    def output(self) -> str:
        """Everything it printed, once it has exited (``""`` while it runs)."""
        assert self.proc.stdout is not None, "started without output=True"
        if self.proc.poll() is None:
            return ""
        return self.proc.stdout.read().decode(errors="replace")

    async def stop(self, grace: float = 60) -> None:
        self.remember()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                await asyncio.to_thread(self.proc.wait, 10)
        self._clean_up()

    def stop_sync(self, grace: float = 60) -> None:
        self.remember()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._clean_up()

    def _clean_up(self) -> None:
        for pid in self.seen:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        close(self.proc.stdout)


def close(stream: IO[bytes] | IO[str] | None) -> None:
    if stream is not None:
        stream.close()
