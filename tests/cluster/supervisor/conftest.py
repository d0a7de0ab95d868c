"""A supervisor on fakes: fake clock, fake worker processes over an in-memory link, a fake plan."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shardrunner.cluster.supervisor import Supervisor
from shardrunner.protocol.keys import ConnKey
from tests.cluster.supervisor.fakes import FakeLink, FakePlan, FakeSettings, FakeSpawner, conns, discover_of
from tests.fakes import FakeClock

TICK = 0.25


@dataclass
class Rig:
    sup: Supervisor
    clock: FakeClock
    spawner: FakeSpawner
    link: FakeLink
    plans: list[FakePlan]
    run_dir: Path
    task: asyncio.Task[int] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self.sup.run())

    @property
    def conns(self) -> list[ConnKey]:
        return [c for p in self.plans for c in p.conns]

    async def advance(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            await self.clock.advance(TICK)

    async def until(self, predicate: Callable[[], bool], within: float, what: str) -> None:
        """Advance the fake clock tick by tick until ``predicate``; fail after ``within`` fake seconds."""
        for _ in range(round(within / TICK) + 1):
            if predicate():
                return
            await self.clock.advance(TICK)
        pytest.fail(f"not within {within} fake seconds: {what}")

    def states(self) -> list[str]:
        return [self.sup.book.reports[c].state if c in self.sup.book.reports else "-" for c in self.conns]

    def all_ready(self) -> bool:
        return all(s == "ready" for s in self.states())

    def workers_ready(self) -> bool:
        assert self.sup.reconciler is not None
        return all(w.ready for w in self.sup.reconciler.live() if w.state.value == "running")

    async def ready(self, within: float = 30) -> None:
        await self.until(lambda: self.all_ready() and self.workers_ready(), within, "every connection ready")

    async def exit_code(self, within: float = 60) -> int:
        assert self.task is not None
        await self.until(self.task.done, within, "the supervisor exited")
        return self.task.result()

    async def reload(self, within: float = 120) -> str:
        fut = self.sup.request_reload()
        await self.until(fut.done, within, "the reload finished")
        return fut.result()


Make = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def rig() -> AsyncIterator[Make]:
    made: list[Rig] = []
    dirs: list[str] = []

    async def make(
        *,
        plans: list[FakePlan] | None = None,
        start: bool = True,
        run_dir: Path | None = None,
        **settings: Any,
    ) -> Rig:
        if run_dir is None:
            # Short: the control socket's ipc path must fit in 107 bytes.
            dirs.append(tempfile.mkdtemp(prefix="sr-", dir="/tmp"))
            run_dir = Path(dirs[-1]) / "run"
        plans = plans if plans is not None else [FakePlan(conns(8))]
        config = dataclasses.replace(FakeSettings(run_dir=str(run_dir)), **settings)
        clock = FakeClock()
        link = FakeLink()
        spawner = FakeSpawner(link)
        sup = Supervisor(
            config,
            discover=discover_of(*plans),
            spawner=spawner,
            link=link,
            clock=clock,
            handle_signals=False,
        )
        r = Rig(sup, clock, spawner, link, plans, run_dir)
        made.append(r)
        if start:
            r.start()
            await clock.settle()
        return r

    yield make
    for r in made:
        if r.task is not None and not r.task.done():
            r.sup.request_stop()
            for _ in range(200):
                if r.task.done():
                    break
                await r.clock.advance(TICK)
            r.task.cancel()
        if r.task is not None:
            with_result = r.task.done() and not r.task.cancelled()
            if with_result and r.task.exception() is not None:
                raise r.task.exception()  # type: ignore[misc]
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
