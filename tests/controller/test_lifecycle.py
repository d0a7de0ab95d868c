"""From notices to a controller's callbacks: by kind, only those it overrides, each contained."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import pytest

from shardrunner.controller import Controller, lifecycle_listener
from shardrunner.controller.lifecycle import (
    CALLBACKS,
    LifecycleListener,
    attach,
    callback_of,
    handles_lifecycle,
)
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

CONN = ConnKey("discord", 0, 2, 4)


class Watcher(Controller):
    hook_timeout = 0.05

    def __init__(self) -> None:
        self.seen: list[tuple[str, ConnKey | None, dict[str, Any]]] = []

    async def on_ready(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        self.seen.append(("ready", conn, dict(info)))

    async def on_reshard_switched(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        self.seen.append(("reshard_switched", conn, dict(info)))

    async def on_fatal(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        raise RuntimeError("pager down")

    async def on_worker_crashed(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        await asyncio.Event().wait()  # hangs


async def drained(listener: LifecycleListener) -> None:
    await asyncio.wait_for(asyncio.gather(*listener.tasks, return_exceptions=True), 5)


def test_callback_of_when_kinds_are_dotted_or_dashed_finds_the_same_callback() -> None:
    assert callback_of("ready") == callback_of("shardrunner.ready") == "on_ready"
    assert callback_of("reshard.started") == callback_of("reshard-started") == "on_reshard_started"
    assert callback_of("shardrunner.disconnected") == "on_reconnecting"
    assert callback_of("shardrunner.channel_moved") == "on_channel_moved"
    assert callback_of("something_else") is None
    assert all(hasattr(Controller, name) for name in CALLBACKS.values())


async def test_listener_when_notices_come_calls_the_overridden_callbacks_by_kind() -> None:
    watcher = Watcher()
    listener = lifecycle_listener(watcher)
    assert isinstance(listener, LifecycleListener)
    listener(Notice("shardrunner.ready", CONN, {"session": "s1"}))
    listener(Notice("shardrunner.reshard_switched", None, {"count": 8}))
    listener(Notice("shardrunner.resumed", CONN))  # not overridden: nothing runs
    listener(Notice("shardrunner.something_new", CONN))  # no callback for it
    assert len(listener.tasks) == 2
    await drained(listener)
    assert watcher.seen == [("ready", CONN, {"session": "s1"}), ("reshard_switched", None, {"count": 8})]
    assert handles_lifecycle(watcher)
    assert not handles_lifecycle(Controller())


async def test_listener_when_a_callback_raises_or_hangs_logs_once_each_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watcher = Watcher()
    listener = LifecycleListener(watcher)
    for _ in range(3):
        listener(Notice("fatal", CONN, {"code": 4004}))
        listener(Notice("worker_crashed", None, {"slot": 1}))
    listener(Notice("ready", CONN))
    await drained(listener)
    assert watcher.seen == [("ready", CONN, {})]
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(messages) == 2
    assert any("Watcher.on_fatal raised RuntimeError: pager down" in m for m in messages)
    assert any("Watcher.on_worker_crashed took longer than its 0.05 s" in m for m in messages)
    assert listener.guard.failures == {"on_fatal": 3, "on_worker_crashed": 3}


def test_listener_when_called_outside_an_event_loop_counts_a_failure() -> None:
    listener = LifecycleListener(Watcher())
    listener(Notice("ready", CONN))
    assert listener.guard.failures == {"on_ready": 1}


async def test_attach_when_the_controller_has_callbacks_appends_one_listener_else_none() -> None:
    listeners: list[Any] = []
    assert attach(None, listeners) is None
    assert attach(Controller(), listeners) is None
    assert listeners == []
    watcher = Watcher()
    listener = attach(watcher, listeners)
    assert listeners == [listener]
    listeners[0](Notice("shardrunner.ready", CONN))
    assert listener is not None
    await drained(listener)
    assert watcher.seen == [("ready", CONN, {})]
