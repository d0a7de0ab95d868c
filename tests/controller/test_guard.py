"""Containment: a hook that raises gets its default and is logged once; an asynchronous one that
hangs gets its default at the timeout; a synchronous one that stalls is turned off."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

import pytest

from shardrunner.controller import Controller, Guard
from shardrunner.controller.guard import SAMPLE_EVERY
from shardrunner.protocol.keys import ConnKey

CONN = ConnKey("discord", 0, 1, 4)


class Raising(Controller):
    def accept(self, platform: str, name: str, key: int | str | None) -> bool:
        raise KeyError(name)

    def route(self, group: str, name: str, key: int | str | None, members: Collection[str]) -> str | None:
        raise ValueError("no route")

    async def take_lease(self, block: int, from_host: str) -> bool:
        raise RuntimeError(f"cannot decide on block {block}")


class Hanging(Controller):
    hook_timeout = 0.05
    stall_after = 0.01
    calls = 0

    def accept(self, platform: str, name: str, key: int | str | None) -> bool:
        self.calls += 1
        time.sleep(0.03)
        return False

    def route(self, group: str, name: str, key: int | str | None, members: Collection[str]) -> str | None:
        self.calls += 1
        time.sleep(0.03)
        return "a"

    async def take_lease(self, block: int, from_host: str) -> bool:
        await asyncio.Event().wait()  # never
        return False


def errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shardrunner.controller" and r.levelno >= logging.ERROR]


async def test_call_when_the_hook_raises_gives_the_default_and_logs_once_with_the_exception(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = Guard(Raising())
    for block in range(5):
        assert await guard.call("take_lease", True, block, "host-b") is True
    [record] = errors(caplog)
    assert "Raising.take_lease raised RuntimeError: cannot decide on block 0" in record.getMessage()
    assert "its default applies" in record.getMessage()
    assert record.exc_info is not None
    assert guard.failures == {"take_lease": 5}


async def test_call_when_the_hook_hangs_gives_the_default_at_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = Guard(Hanging())
    started = time.monotonic()
    assert await guard.call("take_lease", True, 1, "host-b") is True
    assert await guard.call("take_lease", True, 2, "host-b") is True
    assert time.monotonic() - started < 5
    [record] = errors(caplog)
    assert "Hanging.take_lease took longer than its 0.05 s (hook_timeout)" in record.getMessage()
    assert guard.failures == {"take_lease": 2}


async def test_call_when_the_hook_is_a_plain_function_uses_its_answer() -> None:
    class Plain(Controller):
        def take_lease(self, block: int, from_host: str) -> bool:  # type: ignore[override]
            return block != 2

    guard = Guard(Plain())
    assert [await guard.call("take_lease", True, b, "h") for b in (1, 2)] == [True, False]
    assert guard.failures == {}


def test_accept_when_the_hook_raises_accepts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    guard = Guard(Raising())
    accept = guard.accept(lambda: pytest.fail("not a stall"))
    assert all(accept("discord", "MESSAGE_CREATE", i) for i in range(200))
    [record] = errors(caplog)
    assert "Raising.accept raised KeyError: 'MESSAGE_CREATE'" in record.getMessage()
    assert guard.failures == {"accept": 200}


def test_accept_when_a_sampled_call_stalls_turns_the_hook_off_for_good(
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = Hanging()
    guard = Guard(controller)
    uninstalled: list[str] = []
    accept = guard.accept(lambda: uninstalled.append("accept"))
    assert accept("discord", "MESSAGE_CREATE", 1) is True, "the stalled call gets the default"
    assert uninstalled == ["accept"]
    assert guard.stalled == {"accept"}
    assert all(accept("discord", "MESSAGE_CREATE", i) for i in range(SAMPLE_EVERY * 2))
    assert controller.calls == 1, "never called again"
    [record] = errors(caplog)
    assert "Hanging.accept took 0.0" in record.getMessage()
    assert "turned off in this process" in record.getMessage()


def test_accept_when_quick_answers_as_the_hook_does_and_times_one_call_in_a_sample() -> None:
    class Half(Controller):
        def accept(self, platform: str, name: str, key: int | str | None) -> bool:
            return isinstance(key, int) and key % 2 == 0

    guard = Guard(Half())
    accept = guard.accept(lambda: pytest.fail("not a stall"))
    assert [accept("discord", "X", k) for k in range(6)] == [True, False, True, False, True, False]
    assert guard.failures == {}


def test_route_when_the_hook_raises_or_names_no_member_gives_the_rendezvous_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = Guard(Raising())
    route = guard.route(lambda: pytest.fail("not a stall"))
    assert route("bot", "MESSAGE_CREATE", 1, ["a", "b"]) is None
    assert guard.failures == {"route": 1}

    class Stranger(Controller):
        def route(self, group: str, name: str, key: int | str | None, members: Collection[str]) -> str | None:
            return "z" if key == 1 else "b"

    guard = Guard(Stranger())
    route = guard.route(lambda: pytest.fail("not a stall"))
    assert route("bot", "MESSAGE_CREATE", 1, ["a", "b"]) is None
    assert route("bot", "MESSAGE_CREATE", 2, ["a", "b"]) == "b"
    assert guard.failures == {"route": 1}
    messages = [r.getMessage() for r in errors(caplog)]
    assert any("Raising.route raised ValueError: no route" in m for m in messages)
    assert any("Stranger.route answered 'z', not a member of the group on this worker" in m for m in messages)


def test_route_when_a_sampled_call_stalls_turns_the_hook_off() -> None:
    controller = Hanging()
    guard = Guard(controller)
    uninstalled: list[str] = []
    route = guard.route(lambda: uninstalled.append("route"))
    assert route("bot", "X", 1, ["a"]) is None
    assert uninstalled == ["route"]
    assert route("bot", "X", 1, ["a"]) is None
    assert controller.calls == 1


async def test_call_when_the_hook_ignores_its_cancellation_still_returns_at_the_timeout() -> None:
    release = asyncio.Event()

    class Stubborn(Controller):
        hook_timeout = 0.05

        async def take_lease(self, block: int, from_host: str) -> bool:
            while not release.is_set():
                try:
                    await asyncio.sleep(0.01)
                except asyncio.CancelledError:
                    continue  # ignores it
            return False

    guard = Guard(Stubborn())
    assert await asyncio.wait_for(guard.call("take_lease", True, 1, "h"), 5) is True
    assert guard.failures == {"take_lease": 1}
    release.set()
    await asyncio.sleep(0.05)
