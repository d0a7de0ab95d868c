"""The process under the harness: stopping it leaves the event loop (and with it an in-process
simulator) running, and kills every pid it saw."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import psutil

from harness.procs import Process, cpu_of, free_port, own_cpu

# Takes its time to stop after SIGTERM, as a cluster whose workers close their connections does.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(0)))\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)
IGNORES_SIGTERM = (
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)
PRINTS = "import sys; print('out'); print('err', file=sys.stderr)"


async def started(code: str) -> Process:
    proc = Process([sys.executable, "-c", code], output=True)
    assert proc.proc.stdout is not None
    assert await asyncio.to_thread(proc.proc.stdout.readline) == b"up\n"
    return proc


async def test_process_stop_when_the_process_is_slow_to_stop_keeps_the_loop_running() -> None:
    proc = await started(SLOW_TO_STOP)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    try:
        await proc.stop(grace=20)
    finally:
        ticker.cancel()
    assert proc.proc.returncode == 0
    assert ticks >= 10, "the loop ran while the process stopped"


def test_process_stop_sync_when_it_saw_other_pids_kills_them() -> None:
    proc = Process([sys.executable, "-c", SLOW_TO_STOP], output=True)
    assert proc.proc.stdout is not None
    assert proc.proc.stdout.readline() == b"up\n"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        proc.seen.add(other.pid)
        proc.stop_sync(grace=20)
        assert proc.proc.returncode == 0
        assert other.wait(10) == -9, "killed"
    finally:
        other.kill()
        other.wait(10)


def test_process_stop_sync_when_sigterm_is_ignored_kills_it_after_the_grace() -> None:
    proc = Process([sys.executable, "-c", IGNORES_SIGTERM], output=True)
    assert proc.proc.stdout is not None
    assert proc.proc.stdout.readline() == b"up\n"
    proc.stop_sync(grace=0.5)
    assert proc.proc.returncode == -9
    assert proc.proc.stdout.closed


async def test_process_output_when_it_exited_has_stdout_and_stderr() -> None:
    proc = Process([sys.executable, "-c", PRINTS], output=True)
    assert await proc.exit_code() == 0
    assert sorted(proc.output().split()) == ["err", "out"]
    await proc.stop()


def test_free_port_when_asked_twice_gives_bindable_ports() -> None:
    port = free_port()
    assert 0 < port < 65536


def test_cpu_of_when_the_process_is_this_one_matches_own_cpu() -> None:
    sum(i * i for i in range(200_000))  # some CPU time to measure
    mine = cpu_of(psutil.Process())
    assert mine > 0
    assert abs(mine - own_cpu()) < 0.05
