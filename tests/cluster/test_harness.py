"""The real-process harness itself: stopping a cluster leaves the event loop (and with it the
in-process simulator) running."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from tests.cluster.conftest import Cluster

# Takes its time to stop after SIGTERM, as a cluster whose workers close their connections does.
SLOW_TO_STOP = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.5), sys.exit(0)))\n"
    "print('up', flush=True)\n"
    "time.sleep(30)\n"
)


def slow_to_stop() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SLOW_TO_STOP], stdout=subprocess.PIPE)


async def test_cluster_kill_everything_when_the_cluster_is_slow_to_stop_keeps_the_loop_running() -> None:
    cluster = Cluster.__new__(Cluster)
    cluster.proc = slow_to_stop()
    cluster.seen_pids = set()
    assert cluster.proc.stdout is not None
    assert await asyncio.to_thread(cluster.proc.stdout.readline) == b"up\n"
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    try:
        await cluster.kill_everything()
    finally:
        ticker.cancel()
    assert cluster.proc.returncode == 0
    assert ticks >= 10, "the loop ran while the cluster stopped"
