"""Signals during start-up (shardrunner/cluster/supervisor/signals.py)."""

from __future__ import annotations

import asyncio
import signal

import pytest

from shardrunner.cluster.supervisor.signals import unless_stopped


async def test_unless_stopped_when_sigterm_comes_during_the_work_cancels_it_and_says_so() -> None:
    signals: asyncio.Queue[int] = asyncio.Queue()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def discover() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # a discovery that would never end
        except asyncio.CancelledError:
            cancelled.set()
            raise

    running = asyncio.ensure_future(unless_stopped(discover(), signals))
    await asyncio.wait_for(started.wait(), 5)
    signals.put_nowait(signal.SIGTERM)
    assert await asyncio.wait_for(running, 5) is False
    assert cancelled.is_set()


async def test_unless_stopped_when_sighup_comes_during_the_work_finishes_it_and_keeps_the_signal() -> None:
    signals: asyncio.Queue[int] = asyncio.Queue()
    go = asyncio.Event()

    async def discover() -> None:
        await go.wait()

    running = asyncio.ensure_future(unless_stopped(discover(), signals))
    signals.put_nowait(signal.SIGHUP)
    await asyncio.sleep(0)
    go.set()
    assert await asyncio.wait_for(running, 5) is True
    assert signals.get_nowait() == signal.SIGHUP  # the loop reloads once it runs


async def test_unless_stopped_when_the_work_fails_raises_its_error() -> None:
    async def discover() -> None:
        raise RuntimeError("no gateway")

    with pytest.raises(RuntimeError, match="no gateway"):
        await unless_stopped(discover(), asyncio.Queue())
