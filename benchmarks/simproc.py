"""The simulator as a separate process for benchmarks: started once, before anything is timed.

Not a benchmark itself. `live_simulator` starts a live-mode one without traffic (memory, start-up);
`running_simulator` starts `shardrunner sim discord` on a free port in
replay mode, waits for its "listening" line (replay scripts are prepared before it prints it), and
stops it on exit.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import psutil

from harness.procs import REPO, free_port


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


class Sim(NamedTuple):
    port: int
    proc: psutil.Process
    log: Path  # the simulator's stderr

    def errors(self) -> int:
        """ERROR lines the simulator has logged so far (e.g. handshakes its clients gave up on)."""
        return _count_errors(self.log)


def _count_errors(log: Path) -> int:
    with contextlib.suppress(OSError), open(log, errors="replace") as f:
        return sum(" ERROR " in line for line in f)
    return 0


@contextlib.contextmanager
def live_simulator(
    shards: int,
    *,
    max_concurrency: int,
    identify_window: float,
    guilds_per_shard: int = 1,
    extra: Sequence[str] = (),
) -> Iterator[Sim]:
    """A live-mode simulator process (rate 0: nothing is dispatched after the GUILD_CREATEs).

    ``guilds_per_shard`` small guilds (one by default) per shard of a ``shards``-shard layout,
    heartbeats every 41.25 s (Discord's interval), no op 1 requests, enough session starts for any
    benchmark. Its stderr goes to a log file (at thousands of connections it can log a traceback per
    abandoned handshake). Killed on exit.
    """
    port = free_port()
    cmd = [
        sys.executable, "-m", "shardrunner", "sim", "discord", "--port", str(port),
        "--shards", str(shards), "--guilds-per-shard", str(guilds_per_shard), "--min-members", "2",
        "--max-members", "5", "--rate", "0", "--identify-window", str(identify_window),
        "--max-concurrency", str(max_concurrency), "--heartbeat-interval", "41250",
        "--heartbeat-request-interval", "0",
        "--session-start-total", "1000000", "--log-level", "warning", *extra,
    ]  # fmt: skip
    log = Path(tempfile.mkdtemp(prefix="sr-bench-sim-")) / "sim.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the world is built and the port listens
        if "listening" not in line:
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"the simulator did not start (exit {proc.poll()}): {line!r}\n{tail}")
        yield Sim(port, psutil.Process(proc.pid), log)
    finally:
        stop_process(proc, 30)
        errors = _count_errors(log)
        if errors:
            print(f"the simulator logged {errors:,} errors: {log}", file=sys.stderr, flush=True)
        else:
            shutil.rmtree(log.parent, ignore_errors=True)
