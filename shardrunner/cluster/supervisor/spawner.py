"""Process handling behind a seam: the supervisor asks a :class:`Spawner` for worker processes and
sees each through a :class:`WorkerHandle`; tests give it fake ones.

The real spawner starts ``python -m shardrunner.cluster.worker`` by module name (the supervisor
never imports the worker), never forks, puts the worker in a session of its own (Ctrl-C reaches the
supervisor only; it stops the workers) and keeps every secret out of its command line and its
environment (the token, the Twitch accounts, the Redis URL and password: the worker gets what it
needs in the assignment, over the worker link in the run dir; its CURVE keys by their files' paths).
Its log is ``RUN_DIR/worker-N.log``, mode 0600.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import psutil

from shardrunner.controller.load import absolute_spec
from shardrunner.rundir import RunDir
from shardrunner.settings.load import ALL_SECTIONS

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.model import SupervisorSettings

#: The worker's module, started as ``python -m`` with ``--endpoint --slot --generation --log-level``.
WORKER_MODULE: Final = "shardrunner.cluster.worker"

#: The environment variables of the secret settings, none of which a worker inherits.
SECRET_ENV: Final = frozenset(s.env_var for section in ALL_SECTIONS for s in section.settings if s.secret)


class WorkerHandle(Protocol):
    """One worker process, as the operating system sees it."""

    @property
    def pid(self) -> int: ...

    def poll(self) -> int | None:
        """The exit status (negative: the signal) once it is gone, None while it runs; never blocks."""

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` (nothing if it is already gone)."""

    def last_words(self) -> str:
        """The last line of its log, to say why it stopped."""

    def usage(self) -> tuple[float | None, int | None]:
        """CPU percent since the previous call, and resident memory in bytes (None if unknown)."""


class Spawner(Protocol):
    """Starts worker processes."""

    def spawn(self, slot: int, generation: int, endpoint: str) -> WorkerHandle:
        """Start the worker of ``slot`` with ``generation``, to connect to the link at ``endpoint``."""


def process_spawner(run_dir: RunDir, settings: SupervisorSettings) -> ProcessSpawner:
    """The spawner of the workers of a supervisor with these settings."""
    return ProcessSpawner(
        run_dir,
        settings.log_level,
        log_format=settings.log_format,
        bus_bind=settings.bus_bind,
        curve_server_key=settings.curve_server_key,
        curve_clients=settings.curve_clients,
        controller=settings.controller,
    )


class ProcessHandle:
    """A real worker process."""

    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path
        self._ps: psutil.Process | None = None
        with contextlib.suppress(psutil.Error):
            self._ps = psutil.Process(proc.pid)
            self._ps.cpu_percent(None)  # the first call only starts the measurement

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def send_signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def last_words(self) -> str:
        return last_line(self.log_path)

    def usage(self) -> tuple[float | None, int | None]:
        if self._ps is None:
            return None, None
        try:
            return self._ps.cpu_percent(None), self._ps.memory_info().rss
        except psutil.Error:
            return None, None


class ProcessSpawner:
    """Spawns ``python -m shardrunner.cluster.worker --endpoint E --slot N --generation G --log-level L``,
    logging to ``RUN_DIR/worker-N.log``; with ``bus_bind``, the worker binds a CURVE bus on TCP too
    (``--bus-bind``, and the key *paths*: the worker reads the keys); with ``controller``, it loads
    that controller (``--controller``, a file's path made absolute)."""

    def __init__(
        self,
        run_dir: RunDir,
        log_level: str,
        *,
        log_format: str = "text",
        bus_bind: str = "",
        curve_server_key: str | None = None,
        curve_clients: str | None = None,
        controller: str = "",
    ) -> None:
        self.run_dir = run_dir
        self.log_level = log_level
        self.log_format = log_format
        self.bus_args: list[str] = []
        if bus_bind:
            self.bus_args = ["--bus-bind", bus_bind, "--curve-server-key", curve_server_key or "",
                             "--curve-clients", curve_clients or ""]  # fmt: skip
        self.controller_args = ["--controller", absolute_spec(controller)] if controller else []

    def spawn(self, slot: int, generation: int, endpoint: str) -> WorkerHandle:
        log_path = self.run_dir.worker_log(slot)
        env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}  # they come in Assign
        command = [
            sys.executable, "-m", WORKER_MODULE, "--endpoint", endpoint, "--slot", str(slot),
            "--generation", str(generation), "--log-level", self.log_level,
            "--log-format", self.log_format, *self.bus_args, *self.controller_args,
        ]  # fmt: skip
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)  # a log an older version left readable
        with os.fdopen(fd, "ab") as log_file:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                env=env,
                start_new_session=True,
            )
        return ProcessHandle(proc, log_path)


def last_line(path: Path) -> str:
    """The last non-empty line of a log, or a sentence saying there is none."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1].strip() if lines else f"it exited without a word (log: {path})"
