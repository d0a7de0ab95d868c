"""The simulator as a separate process for benchmarks: started once, before anything is timed.

Not a benchmark itself: `running_simulator` starts `shardrunner sim discord` on a free port in
replay mode, waits for its "listening" line (replay scripts are prepared before it prints it), and
stops it on exit.
"""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
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


@contextmanager
def running_simulator(
    *,
    shards: int,
    events: int,
    compress: list[str],
    extra: list[str] | None = None,
    timeout: float = 900,
    rate: str = "max",
) -> Iterator[tuple[int, psutil.Process]]:
    """Yield (port, process) of a replay-mode simulator that sends each shard `events` dispatches."""
    cmd = [
        sys.executable, "-m", "shardrunner", "sim", "discord", "--port", "0",
        "--shards", str(shards), "--guilds-per-shard", "1", "--max-members", "20",
        "--identify-window", "0", "--max-concurrency", str(shards), "--replay", str(events),
        "--replay-compress", ",".join(compress), "--rate", rate, "--heartbeat-interval", "600000",
        "--heartbeat-request-interval", "0", "--session-start-total", "100000", "--log-level", "warning",
        *(extra or []),
    ]  # fmt: skip
    print(
        f"starting the simulator, preparing {shards} x {len(compress)} scripts of {events:,} events",
        flush=True,
    )
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    # Blocks until the scripts are ready and the port listens; port 0 lets the simulator pick a
    # free port itself (no race with other processes), and the line says which.
    line = proc.stdout.readline()
    found = re.search(r"listening on http://[^:]+:(\d+)", line)
    if found is None:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        raise SystemExit(f"the simulator did not start (exit {proc.returncode}): {line!r}")
    port = int(found.group(1))
    try:
        yield port, psutil.Process(proc.pid)
    finally:
        stop_process(proc, 10)


def stop_process(proc: subprocess.Popen[str], grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; close its stdout pipe."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    if proc.stdout:
        proc.stdout.close()
