"""The run directory: every path a cluster, its workers, the CLI and bots find each other by.

One cluster per run directory. Nothing here imports more than the standard library, so that the
client (``shardrunner.client``) can use it without loading the cluster.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "SHARDRUNNER_RUN_DIR"


def default_run_dir() -> str:
    """``$XDG_RUNTIME_DIR/shardrunner``, else ``/tmp/shardrunner-UID``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "shardrunner")
    return f"/tmp/shardrunner-{os.getuid()}"


def resolve_run_dir(option: str | Path | None = None) -> Path:
    """The run directory of a command other than ``start``: the option, else $SHARDRUNNER_RUN_DIR,
    else the default ``start`` uses."""
    if option:
        return Path(option)
    return Path(os.environ.get(ENV_VAR) or default_run_dir())


class RunDir:
    """The paths inside one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def pid_file(self) -> Path:
        return self.path / "supervisor.pid"

    @property
    def control_sock(self) -> Path:
        return self.path / "control.sock"

    @property
    def control_endpoint(self) -> str:
        return f"ipc://{self.control_sock}"

    @property
    def workers_sock(self) -> Path:
        return self.path / "workers.sock"

    @property
    def workers_endpoint(self) -> str:
        return f"ipc://{self.workers_sock}"

    def bus_sock(self, slot: int, generation: int) -> Path:
        return self.path / f"bus-{slot}-{generation}.sock"

    def bus_endpoint(self, slot: int, generation: int) -> str:
        return f"ipc://{self.bus_sock(slot, generation)}"

    def bus_socks(self) -> list[Path]:
        return sorted(self.path.glob("bus-*.sock"))

    @property
    def state_file(self) -> Path:
        return self.path / "sessions.json"

    @property
    def channels_file(self) -> Path:
        """Twitch channels added and removed at run time (``shardrunner channels``), kept across restarts."""
        return self.path / "channels.json"

    @property
    def sim_log(self) -> Path:
        return self.path / "sim.log"

    def worker_log(self, slot: int) -> Path:
        return self.path / f"worker-{slot}.log"

    def supervisor_pid(self) -> int | None:
        """The pid the pid file names, if it names a living process (None otherwise)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid  # alive, someone else's
        return pid
