"""Coordinators of one test cluster against the real ``redis_server`` of tests/redis_server.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from shardrunner.identify.coordinator import Coordinator, CoordinatorDown
from tests.redis_server import RedisServer

_clusters = itertools.count()

MakeCoordinator = Callable[[], Awaitable[Coordinator]]
T = TypeVar("T")


async def until_up(call: Callable[[], Awaitable[T]], timeout: float = 5.0) -> T:
    """``call()`` once it no longer raises CoordinatorDown (the pool's first call after a restart
    of redis-server may still meet the old connection), within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except CoordinatorDown:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


@pytest.fixture
async def coordinators(redis_server: RedisServer) -> AsyncIterator[MakeCoordinator]:
    """A factory of coordinators of one fresh cluster (one per "host"), all closed after the test."""
    cluster = f"hosts{next(_clusters)}"
    made: list[Coordinator] = []

    async def make() -> Coordinator:
        coordinator = Coordinator(redis_server.url, cluster, timeout=0.5)
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        await coordinator.close()
