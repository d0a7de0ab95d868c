"""A reshard on fakes: the new set beside the old, held, the four steps of the switch in order and
spaced, the old set finished; aborts, refusals, crashes, reloads and stops in the middle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.cluster import statefile
from shardrunner.control import CommandError
from shardrunner.gateway.platform import ResizePolicy
from shardrunner.protocol import lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from tests.cluster.supervisor.conftest import Make, Rig
from tests.cluster.supervisor.fakes import TOKEN, Behaviour, FakeResizablePlan, conns

OLD = conns(4)
NEW = conns(8, generation=1)


async def running(rig: Make, **kw: Any) -> Rig:
    r = await rig(plans=[FakeResizablePlan(conns(4), **kw)], workers=2)
    await r.ready()
    return r


def phase(r: Rig) -> str:
    status = r.sup.resharder.status() if r.sup.resharder else None
    return status.phase if status else "-"


def deliveries(r: Rig) -> list[tuple[bytes, tuple[tuple[ConnKey, Delivery], ...]]]:
    return [(who, tuple(msg.delivery)) for who, msg in r.link.sent if isinstance(msg, m.SetDelivery)]


def steps(r: Rig) -> list[tuple[int, Delivery, frozenset[int]]]:
    """Each delivery change as (generation of its connections, mode, slots it went to)."""
    out: dict[tuple[int, Delivery], set[int]] = {}
    order: list[tuple[int, Delivery]] = []
    for who, changes in deliveries(r):
        key = (changes[0][0].generation, changes[0][1])
        if key not in out:
            out[key] = set()
            order.append(key)
        out[key].add(int(who.split(b":")[0]))
    return [(g, mode, frozenset(out[(g, mode)])) for g, mode in order]


async def test_reshard_by_command_runs_the_new_set_held_then_switches_in_four_spaced_steps(rig: Make) -> None:
    r = await running(rig)
    answer = await r.sup.reshard(8, dry_run=False, abort=False)
    assert answer["started"]
    assert answer["plan"]["count"] == 8
    await r.until(lambda: phase(r) == "switching", 30, "the switch begins")
    new_procs = [p for p in r.spawner.living() if p.conns and p.conns[0].generation == 1]
    assert sorted(c for p in new_procs for c in p.conns) == NEW, "the new set runs on slots of its own"
    assert all(p.of(m.Assign)[0].delivery == [(c, Delivery.HOLD) for c in p.conns] for p in new_procs)
    assert sorted(r.link.grants[-8:]) == NEW
    await r.until(lambda: phase(r) == "done", 30, "the reshard is done")
    assert [(g, mode) for g, mode, _ in steps(r)] == [
        (0, Delivery.DEDUPE),
        (1, Delivery.DEDUPE),
        (0, Delivery.MUTE),
        (1, Delivery.LIVE),
    ]
    assert steps(r)[0][2] == {0, 1}
    assert steps(r)[1][2] == {2, 3}
    old_procs = [p for p in r.spawner.spawned if p.slot in (0, 1)]
    assert all(p.of(m.Finish) and p.code == 0 for p in old_procs), "the old workers end their sessions"
    assert r.sup.conns == NEW
    assert sorted(c for s in r.sup.slots for c in s.desired.conns) == NEW
    assert not set(OLD) & set(r.sup.book.reports), "the book forgot the old set"
    assert r.sup.endpoints()["platforms"]["discord"]["generation"] == 1
    assert r.sup.delivery.modes == {}


async def test_each_switch_step_waits_the_overlap_after_the_previous_one_applied(rig: Make) -> None:
    r = await running(rig, policy=ResizePolicy(overlap=3.0, timeout=60.0, drain=5.0))
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: len(steps(r)) == 1, 30, "the first step")
    start = r.clock.monotonic()
    await r.until(lambda: len(steps(r)) == 2, 10, "the second step")
    assert r.clock.monotonic() - start >= 3.0
    assert r.sup.endpoints()["platforms"]["discord"]["generation"] == 1, "sends go to the new set"
    second = r.clock.monotonic()
    await r.until(lambda: len(steps(r)) == 3, 10, "the third step")
    assert r.clock.monotonic() - second >= 3.0


async def test_the_switch_waits_until_every_new_shard_has_all_its_routing_keys(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(keys_pending=6)
    await r.sup.reshard(8, dry_run=False, abort=False)
    reports = r.sup.book.reports
    await r.until(lambda: all(c in reports and reports[c].state == "ready" for c in NEW), 30, "ready")
    status = r.sup.resharder.status()  # type: ignore[union-attr]
    assert status is not None
    assert status.phase == "warming"
    assert status.keys_pending > 0
    assert steps(r) == []
    await r.until(lambda: phase(r) == "switching", 30, "the keys arrived")


async def test_a_fatal_close_in_the_new_set_aborts_and_the_old_set_goes_on(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(fatal=frozenset({NEW[5]}))
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: phase(r) == "aborted", 30, "the reshard aborted")
    status = r.sup.resharder.status()  # type: ignore[union-attr]
    assert status is not None
    assert status.outcome is not None
    assert "4013" in status.outcome
    assert r.sup.error is None, "the cluster goes on"
    assert r.sup.state == "running"
    await r.until(lambda: all(s.index in (0, 1) for s in r.sup.slots), 30, "the new slots go")
    assert r.sup.conns == OLD
    assert all(p.code is not None for p in r.spawner.spawned if p.slot >= 2)
    assert not any(
        mode is not Delivery.LIVE for _, ch in deliveries(r) for c, mode in ch if c.generation == 0
    )


async def test_a_new_set_that_is_never_ready_is_aborted_at_the_timeout(rig: Make) -> None:
    r = await running(rig, policy=ResizePolicy(overlap=1.0, timeout=20.0, drain=5.0))
    r.spawner.default = Behaviour(ready=False)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: phase(r) == "aborted", 40, "the timeout")
    status = r.sup.resharder.status()  # type: ignore[union-attr]
    assert status is not None
    assert "not ready within 20 s" in (status.outcome or "")


async def test_a_refused_reshard_changes_nothing(rig: Make) -> None:
    r = await running(rig, refuse="Discord allows 3 more session starts today")
    with pytest.raises(CommandError, match="reshard refused: Discord allows 3"):
        await r.sup.reshard(8, dry_run=False, abort=False)
    dry = await r.sup.reshard(8, dry_run=True, abort=False)
    assert dry["message"].startswith("refused")
    assert not dry["started"]
    assert len(r.sup.slots) == 2
    assert r.sup.resharder.run is None


async def test_two_reshards_at_once_are_refused(rig: Make) -> None:
    r = await running(rig)
    await r.sup.reshard(8, dry_run=False, abort=False)
    with pytest.raises(CommandError, match="a reshard is under way"):
        await r.sup.reshard(16, dry_run=False, abort=False)


async def test_abort_by_command_before_the_switch_finishes_the_new_set(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(ready=False)
    await r.sup.reshard(8, dry_run=False, abort=False)
    answer = await r.sup.reshard(None, dry_run=False, abort=True)
    assert "aborted" in answer["message"]
    await r.until(lambda: all(s.index in (0, 1) for s in r.sup.slots), 30, "the new slots go")


async def test_a_new_worker_crash_while_warming_restarts_it_held(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(keys_pending=40)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: r.spawner.of_slot(2) and r.spawner.of_slot(2)[0].ready, 30, "slot 2 identified")
    r.spawner.default = Behaviour()
    r.spawner.of_slot(2)[0].exit(-9)
    await r.until(lambda: len(r.spawner.of_slot(2)) == 2 and r.spawner.of_slot(2)[1].conns, 30, "replaced")
    again = r.spawner.of_slot(2)[1].of(m.Assign)[0]
    assert dict(again.delivery) == {c: Delivery.HOLD for c in again.conns}
    assert again.snapshots, "it resumes"
    await r.until(lambda: phase(r) == "done", 60, "the reshard completes")


async def test_a_reload_while_warming_replaces_both_sets_and_the_reshard_completes(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(keys_pending=8)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: len(r.spawner.of_slot(3)) == 1, 30, "the new slots start")
    message = await r.reload()
    assert message.startswith("reload done"), message
    assert all(len(r.spawner.of_slot(i)) >= 2 for i in (0, 1, 2, 3)), "every slot was replaced"
    held = [p.of(m.Assign)[-1] for p in r.spawner.living() if p.slot >= 2 and p.of(m.Assign)]
    assert held
    assert all(dict(a.delivery) for a in held), "the replacements are held too"
    await r.until(lambda: phase(r) == "done", 60, "the reshard completes")


async def test_a_stop_before_the_switch_aborts_and_saves_the_old_set(rig: Make) -> None:
    r = await running(rig)
    r.spawner.default = Behaviour(ready=False)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: len(r.spawner.of_slot(3)) == 1, 30, "the new slots start")
    r.sup.request_stop()
    assert await r.exit_code() == 0
    sets = statefile.saved_sets(Path(r.run_dir), TOKEN, 120.0)
    assert sets == [("discord", 0, 4)]


async def test_a_stop_after_the_new_set_delivers_completes_and_saves_the_new_set(rig: Make) -> None:
    r = await running(rig, policy=ResizePolicy(overlap=5.0, timeout=60.0, drain=5.0))
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: len(steps(r)) == 2, 30, "the new set delivers")
    r.sup.request_stop()
    assert await r.exit_code() == 0
    assert statefile.saved_sets(Path(r.run_dir), TOKEN, 120.0) == [("discord", 1, 8)]


async def test_a_start_after_a_reshard_resumes_the_saved_set_not_the_configured_one(rig: Make) -> None:
    first = await running(rig)
    await first.sup.reshard(8, dry_run=False, abort=False)
    await first.until(lambda: phase(first) == "done", 60, "the reshard")
    first.sup.request_stop()
    assert await first.exit_code() == 0
    again = await rig(plans=[FakeResizablePlan(conns(4))], workers=2, run_dir=first.run_dir)
    await again.until(lambda: again.sup.state == "running", 10, "started")
    assert again.sup.conns == NEW
    await again.until(lambda: all(p.resumed for p in again.spawner.living()), 30, "assigned")
    assert sorted(c for p in again.spawner.living() for c in p.resumed) == NEW


async def test_the_automatic_check_reshards_when_the_plan_says_one_is_due(rig: Make) -> None:
    policy = ResizePolicy(auto=True, check_every=10.0, overlap=1.0, timeout=60.0, drain=5.0)
    r = await running(rig, policy=policy)
    plan = r.plans[0]
    assert isinstance(plan, FakeResizablePlan)
    await r.advance(12)
    assert plan.proposed
    assert plan.proposed[-1][2] is True
    assert r.sup.resharder.run is None
    plan.due = 8
    await r.until(lambda: phase(r) == "done", 60, "the automatic reshard")
    assert r.sup.conns == NEW


async def test_a_reload_asked_during_the_switch_waits_for_it_then_replaces_every_worker(rig: Make) -> None:
    r = await running(rig, policy=ResizePolicy(overlap=3.0, timeout=60.0, drain=5.0))
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: len(steps(r)) == 1, 30, "the switch began")
    reload = r.sup.request_reload()
    await r.advance(1)
    assert not reload.done()
    assert r.sup.state == "running", "the reload has not begun: it follows the switch"
    await r.until(lambda: phase(r) in ("draining", "done"), 30, "the switch ends")
    await r.until(reload.done, 120, "the reload")
    assert reload.result().startswith("reload done"), reload.result()
    await r.until(lambda: phase(r) == "done", 30, "done")
    assert sorted(c for s in r.sup.slots for c in s.desired.conns) == NEW


async def test_an_aborted_automatic_reshard_is_not_tried_again_for_an_hour(rig: Make) -> None:
    policy = ResizePolicy(auto=True, check_every=10.0, overlap=1.0, timeout=20.0, drain=5.0)
    r = await running(rig, policy=policy, due=8)
    r.spawner.default = Behaviour(fatal=frozenset({NEW[3]}))
    await r.until(lambda: phase(r) == "aborted", 60, "the automatic reshard aborted")
    tries = len([c for c in r.plans[0].proposed if c[2]])  # type: ignore[attr-defined]
    for _ in range(60):  # ten minutes, check by check
        await r.clock.advance(10)
    assert phase(r) == "aborted", "not tried again within the hour"
    assert len([c for c in r.plans[0].proposed if c[2]]) == tries  # type: ignore[attr-defined]
    r.spawner.default = Behaviour()
    await r.clock.advance(3000)  # past the hour, in one jump
    await r.until(lambda: phase(r) == "done", 120, "tried again after the hour")


async def test_the_switch_waits_until_the_bots_have_joined_the_new_workers(rig: Make) -> None:
    r = await rig(plans=[FakeResizablePlan(conns(4))], workers=2, start=False)
    r.spawner.default = Behaviour(members=2)
    r.start()
    await r.ready()
    r.spawner.default = Behaviour(members=1)  # one of the two members has not found them yet
    await r.sup.reshard(8, dry_run=False, abort=False)
    reports = r.sup.book.reports
    await r.until(lambda: all(c in reports and reports[c].state == "ready" for c in NEW), 30, "ready")
    await r.advance(5)
    assert phase(r) == "warming", "not while a member is missing on the new workers"
    for proc in r.spawner.living():
        proc.behaviour.members = 2
    await r.until(lambda: phase(r) == "done", 30, "both members joined")


async def test_reshard_lifecycle_when_it_switches_the_listeners_hear_it_and_the_last_step_is_the_switch(
    rig: Make,
) -> None:
    r = await running(rig)
    heard: list[Notice] = []
    r.sup.lifecycle_listeners.append(heard.append)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.until(lambda: phase(r) == "done", 30, "the reshard is done")
    assert [n.kind for n in heard] == [lifecycle.RESHARD_STARTED, lifecycle.RESHARD_SWITCHED]
    assert heard[0].fields == {
        "platform": "discord", "from": 4, "to": 8, "generation": 1, "reason": heard[0].fields["reason"],
    }  # fmt: skip
    sets = [msg for _, msg in r.link.sent if isinstance(msg, m.SetDelivery)]
    assert [s.switch for s in sets if s.switch] == [True, True], "to the two new workers"
    assert all(
        mode is Delivery.LIVE and c.generation == 1 for s in sets if s.switch for c, mode in s.delivery
    )


async def test_reshard_lifecycle_when_aborted_or_a_worker_dies_the_listeners_hear_it(rig: Make) -> None:
    r = await running(rig)
    heard: list[Notice] = []
    r.sup.lifecycle_listeners.append(heard.append)
    r.spawner.default = Behaviour(ready=False)
    await r.sup.reshard(8, dry_run=False, abort=False)
    await r.sup.reshard(None, dry_run=False, abort=True)
    assert [n.kind for n in heard] == [lifecycle.RESHARD_STARTED, lifecycle.RESHARD_ABORTED]
    assert heard[1].fields["reason"] == "asked by shardrunner reshard --abort"
    r.spawner.of_slot(0)[0].exit(-9)
    await r.until(lambda: len(heard) == 3, 30, "the crash heard")
    crashed = heard[2]
    assert (crashed.kind, crashed.conn, crashed.fields["slot"]) == (lifecycle.WORKER_CRASHED, None, 0)
    assert crashed.fields["reason"] == "signal 9"
    assert crashed.fields["conns"] == [str(c) for c in OLD[:2]]
