"""The reconcile loop on fakes: start, crash and backoff, boot failure, hung worker, reload and its
rollbacks, stop."""

from __future__ import annotations

import signal

from shardrunner.cluster import messages as m
from shardrunner.cluster import statefile
from shardrunner.cluster.supervisor import moves
from shardrunner.cluster.supervisor.model import WorkerState
from tests.cluster.supervisor.conftest import Make
from tests.cluster.supervisor.fakes import TOKEN, Behaviour, conns


async def test_loop_when_started_runs_consecutive_ranges_and_identifies_in_shard_order(rig: Make) -> None:
    r = await rig()
    await r.ready()
    assert [p.conns for p in r.spawner.spawned] == [conns(8)[:4], conns(8)[4:]]
    assert [str(c) for c in r.spawner.spawned[1].conns] == [f"discord:{i}/8" for i in range(4, 8)]
    assert r.link.grants == conns(8), "one bucket: in shard order, whichever worker asked first"
    assert r.plans[0].checked == [8]
    assign = r.spawner.spawned[0].of(m.Assign)[0]
    assert assign.parts[0].platform == "discord"
    assert assign.bus_endpoint == f"ipc://{r.run_dir}/bus-0-1.sock"
    assert all(w.state is WorkerState.RUNNING and w.ready for w in r.sup.reconciler.live())  # type: ignore[union-attr]


async def test_loop_when_a_worker_crashes_replaces_it_after_a_doubling_backoff_and_resumes(rig: Make) -> None:
    r = await rig(worker_backoff=1.0)
    await r.ready()
    first = r.spawner.of_slot(0)[0]
    first.exit(-9)
    await r.advance(0.25)
    assert r.states()[:4] == ["down"] * 4
    assert len(r.spawner.of_slot(0)) == 1, "not before the backoff"
    await r.until(lambda: len(r.spawner.of_slot(0)) == 2, 1.5, "a replacement")
    second = r.spawner.of_slot(0)[1]
    await r.ready()
    assert second.resumed == conns(8)[:4]
    assert second.identified == []
    assert [s.session_id for s in second.of(m.Assign)[0].snapshots] == [
        f"s-discord:{i}/8-1" for i in range(4)
    ]
    second.exit(1)
    await r.advance(1.5)
    assert len(r.spawner.of_slot(0)) == 2, "the second crash waits twice as long"
    await r.until(lambda: len(r.spawner.of_slot(0)) == 3, 1.0, "the next replacement")
    await r.ready()
    assert r.sup.exit_code == 0
    assert r.sup.error is None


async def test_loop_when_a_worker_fails_to_boot_stops_the_cluster_with_its_last_words(rig: Make) -> None:
    r = await rig(start=False)
    r.spawner.behaviours[(1, 2)] = Behaviour(boot="fail", words="ModuleNotFoundError: No module named 'x'")
    r.start()
    assert await r.exit_code() == 1
    assert r.sup.error == "worker 1 failed to start: ModuleNotFoundError: No module named 'x'"
    assert r.spawner.living() == []


async def test_loop_when_a_worker_never_says_hello_stops_the_cluster_after_the_boot_timeout(
    rig: Make,
) -> None:
    r = await rig(start=False)
    r.spawner.behaviours[(0, 1)] = Behaviour(boot="silent")
    r.start()
    assert await r.exit_code(within=60) == 1
    assert r.sup.error == "worker 0 did not start within 30 s"
    assert r.spawner.spawned[0].signals, "the silent worker was told to go"


async def test_loop_when_a_worker_hangs_terms_then_kills_it_and_resumes_elsewhere(rig: Make) -> None:
    r = await rig(hung_after=5.0)
    await r.ready()
    hung = r.spawner.of_slot(1)[0]
    hung.behaviour.pongs = False
    hung.behaviour.ignore_term = True
    await r.until(lambda: signal.SIGTERM in hung.signals, 8, "SIGTERM to the hung worker")
    assert hung.code is None
    await r.until(lambda: signal.SIGKILL in hung.signals, 5.5, "SIGKILL after the grace")
    await r.until(lambda: len(r.spawner.of_slot(1)) == 2, 3, "a replacement")
    await r.ready()
    assert r.spawner.of_slot(1)[1].resumed == conns(8)[4:]


async def test_reload_when_replacements_get_ready_hands_every_session_over(rig: Make) -> None:
    r = await rig()
    await r.ready()
    old = list(r.spawner.spawned)
    message = await r.reload()
    assert message == "reload done: every worker replaced, every shard resumed"
    assert all(p.code == 0 for p in old), "the old workers retired"
    assert [h.exit for p in old for h in p.of(m.Handoff)] == [False, True, False, True]
    new = r.spawner.living()
    assert [p.slot for p in new] == [0, 1]
    assert all(p.identified == [] for p in new)
    assert [c for p in new for c in p.resumed] == conns(8)
    await r.ready()


async def test_reload_when_the_replacement_does_not_boot_keeps_the_old_worker_and_says_why(rig: Make) -> None:
    r = await rig()
    await r.ready()
    r.spawner.behaviours[(0, 3)] = Behaviour(boot="fail", words="RuntimeError: boot refused for the test")
    message = await r.reload()
    assert message == (
        "reload stopped at worker 0: the replacement did not start "
        "(RuntimeError: boot refused for the test); the old worker keeps its shards"
    )
    old = r.spawner.of_slot(0)[0]
    assert old.code is None
    assert old.of(m.Handoff) == []
    assert len(r.spawner.of_slot(1)) == 1, "the reload stopped there"
    assert r.all_ready()
    assert r.sup.state == "running"
    assert r.sup.error is None


async def test_reload_when_the_replacement_is_not_ready_in_time_gives_the_sessions_back(rig: Make) -> None:
    r = await rig(ready_timeout=5.0)
    await r.ready()
    r.spawner.behaviours[(0, 3)] = Behaviour(ready=False)
    message = await r.reload(within=60)
    assert message == (
        "reload stopped at worker 0: the replacement's shards were not ready within 5 s; "
        "the old worker took them back"
    )
    old, new = r.spawner.of_slot(0)
    assert new.code == 0, "the replacement handed the sessions back and exited"
    back = old.of(m.Assign)[-1]
    assert len(old.of(m.Assign)) == 2
    assert [s.session_id for s in back.snapshots] == [f"s-discord:{i}/8-1" for i in range(4)]
    await r.ready()
    assert r.sup.reconciler.slots[0].current.handle is old  # type: ignore[union-attr]


async def test_stop_when_running_hands_every_session_over_and_saves_them(rig: Make) -> None:
    r = await rig()
    await r.ready()
    assert r.sup.request_stop() == "stopping: the sessions will be saved; a start within 120 s resumes them"
    assert await r.exit_code() == 0
    assert all(p.code == 0 and p.of(m.Handoff)[-1].exit for p in r.spawner.spawned)
    saved, why = statefile.load(r.run_dir, conns(8), TOKEN, 60)
    assert why.startswith("resuming 8 saved sessions")
    assert [s.seq for s in saved] == [6] * 8, "the handed-off seqs"
    assert not (r.run_dir / "control.sock").exists()
    assert not (r.run_dir / "supervisor.pid").exists()


async def test_stop_when_a_worker_ignores_the_handoff_kills_it_and_still_exits(rig: Make) -> None:
    r = await rig()
    await r.ready()
    stuck = r.spawner.of_slot(1)[0]
    stuck.deliver = lambda message: None  # type: ignore[method-assign]
    r.sup.request_stop()
    assert await r.exit_code(within=30) == 0
    assert stuck.signals == [signal.SIGKILL]
    saved, _ = statefile.load(r.run_dir, conns(8), TOKEN, 60)
    assert len(saved) == 8, "the stuck worker's sessions come from its last reports"


async def test_reload_when_the_old_worker_dies_before_the_handover_lets_the_replacement_take_the_slot(
    rig: Make,
) -> None:
    r = await rig()
    await r.ready()
    r.spawner.behaviours[(0, 3)] = Behaviour(boot="silent")
    reload = r.sup.request_reload()
    await r.until(lambda: len(r.spawner.of_slot(0)) == 2, 2, "the replacement is spawned")
    old, new = r.spawner.of_slot(0)
    old.exit(-9)
    await r.advance(0.5)
    new.behaviour.boot = "ok"
    new._hello()  # it boots late
    await r.until(reload.done, 60, "the reload finished")
    assert reload.result() == "reload done: every worker replaced, every shard resumed"
    assert new.resumed == conns(8)[:4], "from the old worker's last reports"
    assert new.of(m.Assign)[0].snapshots[0].session_id == "s-discord:0/8-1"
    await r.ready()


async def test_loop_when_a_replacement_stays_healthy_resets_the_backoff(rig: Make) -> None:
    r = await rig(worker_backoff=1.0)
    await r.ready()
    r.spawner.of_slot(0)[0].exit(1)
    await r.until(lambda: len(r.spawner.of_slot(0)) == 2, 2, "a replacement")
    await r.ready()
    assert r.sup.slots[0].backoff == 1.0
    await r.advance(31)
    assert r.sup.slots[0].backoff == 0.0
    r.spawner.of_slot(0)[1].exit(1)
    await r.until(lambda: len(r.spawner.of_slot(0)) == 3, 1.25, "a replacement after the first delay")
    assert r.sup.slots[0].backoff == 1.0, "not doubled"


async def test_reload_when_the_host_lost_a_slots_blocks_before_it_does_not_wait_for_them(rig: Make) -> None:
    # Several hosts: a host that woke from a stall past its lease lost its blocks (the agent's lose()).
    r = await rig(ready_timeout=5.0)
    await r.ready()
    assert r.sup.reconciler is not None
    moves.remove(r.sup.reconciler.slots, conns(8)[:4], r.sup.link)
    message = await r.reload(within=4)
    assert message == (
        "reload done: every worker replaced, every shard resumed; worker 0 had no shard "
        "(not held here now, another host's): nothing to wait for"
    )
    assert r.spawner.of_slot(0)[1].of(m.Assign)[-1].conns == []
    assert [c for p in r.spawner.living() for c in p.resumed] == conns(8)[4:]


async def test_reload_when_the_host_loses_the_blocks_during_the_overlap_retires_the_old_worker(
    rig: Make,
) -> None:
    r = await rig(ready_timeout=5.0)
    await r.ready()
    assert r.sup.reconciler is not None
    slot = r.sup.reconciler.slots[0]
    r.spawner.behaviours[(0, 3)] = Behaviour(ready=False)  # its shards would never get ready
    fut = r.sup.request_reload()
    await r.until(lambda: slot.previous is not None, 4, "slot 0's replacement running beside the old")
    moves.remove(r.sup.reconciler.slots, conns(8)[:4], r.sup.link)
    await r.until(fut.done, 4, "the reload finished")
    assert "worker 0 had no shard" in fut.result()
    old, new = r.spawner.of_slot(0)
    assert old.code == 0, "the old worker retired"
    assert new.code is None
    assert slot.current is not None
    assert slot.current.handle is new
