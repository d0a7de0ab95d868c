"""The built-in simulator of ``shardrunner start --sim``: a child process that dies with us.

The CLI, not the supervisor, starts it (the supervisor imports nothing of the simulator): it runs
``python -m shardrunner sim discord --port 0 ...``, reads the one line the simulator prints once it
listens, and points the settings at it. The child asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``, Linux), so that a supervisor killed with SIGKILL leaves no simulator behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from shardrunner.rundir import RunDir
from shardrunner.settings import Settings

_PR_SET_PDEATHSIG = 1
_LISTENING = re.compile(r"listening on ((?:http|ws)://\S+)")


class SimulatorError(RuntimeError):
    """The simulator did not start; the message is one sentence for the user."""


def _die_with_parent(parent: int) -> Callable[[], None]:
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would send the signal.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def twitch_simulator_command(settings: Settings, channels_file: Path | None) -> list[str]:
    """The Twitch simulator's command line for a ``--sim`` run: the configured channels (or its
    default 20), the cluster's limit windows (``--twitch-join-window``, ``--twitch-message-window``:
    the simulator enforces what the cluster paces for), free ports, 20 chat lines per second over
    all channels."""
    return [
        sys.executable, "-m", "shardrunner", "sim", "twitch", "--port", "0", "--irc-port", "0",
        *(["--channels", str(channels_file)] if channels_file is not None else []),
        "--join-window", str(settings.twitch_join_window),
        "--message-window", str(settings.twitch_message_window),
        "--rate", "20", "--log-level", "warning",
    ]  # fmt: skip


def simulator_command(settings: Settings) -> list[str]:
    """The simulator's command line for a ``--sim`` run of ``settings``: the shard count and identify
    limits the cluster asks for, a free port, 20 dispatches per second per shard."""
    shards = 4 if settings.shards == "auto" else int(settings.shards)
    return [
        sys.executable, "-m", "shardrunner", "sim", "discord", "--port", "0",
        "--shards", str(shards), "--identify-window", str(settings.identify_window),
        "--max-concurrency", str(settings.max_concurrency or 1), "--rate", "20", "--log-level", "warning",
    ]  # fmt: skip


class SimulatorProcess:
    """The running simulator child: its process and URL; :meth:`stop` ends it."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.proc = proc
        self.url = url
        self.log = log

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the child and wait for it (kill it if it takes longer than ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_simulator(
    cmd: list[str], run_dir: Path, *, timeout: float = 60.0, log_name: str | None = None
) -> SimulatorProcess:
    """Start the simulator child with ``cmd``, its log in the run dir's ``sim.log``, and wait until it
    listens; SimulatorError when it exits or stays silent for ``timeout`` seconds."""
    log = RunDir(run_dir).sim_log if log_name is None else Path(run_dir) / log_name
    with open(log, "ab") as log_file:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            # Its own session: Ctrl-C reaches the supervisor, which stops the shards first; the
            # simulator is stopped after, by stop() (or by the kernel if we die).
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
        )
    try:
        line = _first_line(proc, timeout)
    except BaseException:
        SimulatorProcess(proc, "", log).stop()
        raise
    found = _LISTENING.search(line)
    if not found:
        SimulatorProcess(proc, "", log).stop()
        raise SimulatorError(f"the built-in simulator did not start (see {log})")
    return SimulatorProcess(proc, found.group(1), log)


def _first_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:  # the child exited
            break
        data += chunk
    with contextlib.suppress(UnicodeDecodeError):
        return data.decode().partition("\n")[0]
    return ""
