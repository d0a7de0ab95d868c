"""The controller's say in the supervisor's decisions, on fakes: an automatic reshard declined,
a lease takeover refused; a hook that raises or hangs leaves the default (go ahead); a controller
that cannot be loaded stops the start in one sentence; a fatal close a controller keeps."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from shardrunner.cluster import messages as m
from shardrunner.cluster.hosts.leases import LastHolder
from shardrunner.cluster.supervisor.decisions import SupervisorHooks
from shardrunner.controller import Controller, ReshardProposal
from shardrunner.gateway.platform import ResizePolicy
from tests.cluster.supervisor.conftest import Make, Rig
from tests.cluster.supervisor.fakes import FakeResizablePlan, conns

AUTO = ResizePolicy(auto=True, check_every=10.0, overlap=1.0, timeout=60.0, drain=5.0)


class Decline(Controller):
    def __init__(self) -> None:
        self.proposals: list[ReshardProposal] = []
        self.asked: list[tuple[int, str]] = []

    async def should_reshard(self, proposal: ReshardProposal) -> bool:
        self.proposals.append(proposal)
        return False

    async def take_lease(self, block: int, from_host: str) -> bool:
        self.asked.append((block, from_host))
        return block % 2 == 0


class Raising(Controller):
    async def should_reshard(self, proposal: ReshardProposal) -> bool:
        raise RuntimeError("the calendar is unreachable")

    async def take_lease(self, block: int, from_host: str) -> bool:
        raise RuntimeError("no")


class Hanging(Controller):
    hook_timeout = 0.05

    async def should_reshard(self, proposal: ReshardProposal) -> bool:
        await asyncio.Event().wait()
        return False

    async def take_lease(self, block: int, from_host: str) -> bool:
        await asyncio.Event().wait()
        return False


def phase(r: Rig) -> str:
    status = r.sup.resharder.status() if r.sup.resharder else None
    return status.phase if status else "-"


async def real_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.01)


async def auto_rig(rig: Make, controller: Controller) -> tuple[Rig, FakeResizablePlan]:
    plan = FakeResizablePlan(conns(4), policy=AUTO, due=8)
    r = await rig(plans=[plan], workers=2, start=False)
    r.sup.hooks.use(controller)
    r.start()
    await r.ready()
    return r, plan


async def test_should_reshard_when_declined_starts_no_automatic_reshard(
    rig: Make, caplog: pytest.LogCaptureFixture
) -> None:
    controller = Decline()
    r, _plan = await auto_rig(rig, controller)
    for _ in range(5):
        await r.advance(10)
    assert len(controller.proposals) >= 3, "asked at every check that finds one due"
    proposal = controller.proposals[0]
    assert (proposal.platform, proposal.current, proposal.count) == ("discord", 4, 8)
    assert r.sup.resharder is not None
    assert r.sup.resharder.run is None
    assert caplog.text.count("the controller declines it for now") == 1
    # An operator's reshard is not the controller's to refuse.
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: phase(r) == "done", 60, "the operator's reshard")


@pytest.mark.parametrize("controller", [Raising, Hanging])
async def test_should_reshard_when_the_hook_fails_reshards_as_without_a_controller(
    rig: Make, controller: type[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    r, _plan = await auto_rig(rig, controller())
    await r.advance(12)
    assert r.sup.hooks.guard is not None
    await real_until(lambda: "should_reshard" in r.sup.hooks.guard.failures, 5, "the hook failed")  # type: ignore[union-attr]
    await r.until(lambda: phase(r) == "done", 60, "the automatic reshard")
    assert r.sup.conns == conns(8, generation=1)
    assert f"{controller.__name__}.should_reshard" in caplog.text
    status = r.sup.status().controller
    assert status is not None
    assert status["failures"] == {"should_reshard": 1}


async def test_take_leases_when_the_controller_refuses_a_takeover_claims_the_others() -> None:
    controller = Decline()
    hooks = SupervisorHooks(controller)
    last = {
        1: LastHolder("host-b", 3, released=False),
        2: LastHolder("host-b", 3, released=False),
        4: LastHolder("host-a", 2, released=True),
    }
    assert await hooks.take_leases([0, 1, 2, 3, 4], last, "host-a") == [0, 2, 3, 4]
    assert controller.asked == [(1, "host-b"), (2, "host-b")], "never-held and own blocks: not asked"
    assert await SupervisorHooks().take_leases([1, 2], last, "host-a") == [1, 2]
    assert await SupervisorHooks(Controller()).take_leases([1, 2], last, "host-a") == [1, 2]


@pytest.mark.parametrize("controller", [Raising, Hanging])
async def test_take_leases_when_the_hook_fails_claims_them_all(
    controller: type[Controller], caplog: pytest.LogCaptureFixture
) -> None:
    hooks = SupervisorHooks(controller())
    last = {b: LastHolder("host-b", 1, released=False) for b in range(3)}
    assert await hooks.take_leases([0, 1, 2], last, "host-a") == [0, 1, 2]
    assert hooks.guard is not None
    assert hooks.guard.failures == {"take_lease": 3}
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_supervisor_when_the_controller_cannot_be_loaded_stops_the_start_in_one_sentence(
    rig: Make,
) -> None:
    r = await rig(controller="no_such_bot_xyz.ops:Controller")
    assert await r.exit_code() == 1
    assert r.sup.error is not None
    assert r.sup.error.startswith("controller no_such_bot_xyz.ops: no module named no_such_bot_xyz")
    assert r.spawner.of_slot(0) == [], "nothing was started"


async def test_supervisor_when_the_settings_name_a_controller_loads_it(
    rig: Make, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "shardrunner.supervisor")
    r = await rig(controller="tests.cluster.supervisor.test_decisions:Decline")
    await r.ready()
    assert type(r.sup.hooks.controller).__name__ == "Decline"
    assert "the hooks it overrides: should_reshard, take_lease" in caplog.text
    assert r.sup.status().controller == {
        "name": "tests.cluster.supervisor.test_decisions.Decline",
        "hooks": ["should_reshard", "take_lease"],
        "failures": {},
    }


async def test_supervisor_when_a_fatal_close_is_kept_by_the_controller_runs_on(rig: Make) -> None:
    r = await rig()
    await r.ready()
    worker = r.spawner.of_slot(0)[0]
    worker.say(m.ConnFailed(conns(8)[1], 4014, "Discord refused the intents (4014): enable them", False))
    await r.advance(2)
    assert r.sup.state == "running"
    assert r.sup.error is None


async def test_load_when_given_the_lifecycle_listeners_adds_the_controllers_listener_once() -> None:
    class Watching(Controller):
        async def on_worker_crashed(self, conn: object, info: object) -> None:
            pass

    listeners: list[Any] = []
    SupervisorHooks(Watching()).load("", listeners)
    assert len(listeners) == 1
    SupervisorHooks(Decline()).load("", listeners)  # no callback: nothing added
    SupervisorHooks().load("", listeners)
    assert len(listeners) == 1
