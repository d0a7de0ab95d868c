"""Blocks moving in and out of running workers (several hosts), and the identify gate a host's
first claims arm: without processes, with a link that records what it was asked to send."""

from __future__ import annotations

import asyncio
from typing import Any

from shardrunner.bus.protocol import Delivery
from shardrunner.cluster import messages as m
from shardrunner.cluster.supervisor import moves
from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.cluster.supervisor.model import DesiredSlot, Slot, Worker, WorkerState
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.settings.hosts import coordinator_url, default_host_name
from tests.cluster.supervisor.fakes import FakePlan, FakeSettings, conns


class Handle:
    pid = 1

    def poll(self) -> int | None:
        return None


class Link:
    endpoint = "inproc://x"

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, m.Message]] = []

    def send(self, identity: bytes, message: m.Message) -> bool:
        self.sent.append((identity, m.decode(m.encode(message))))
        return True


def running(index: int, have: list[ConnKey], *, hello: bool = True) -> Slot:
    slot = Slot(index, DesiredSlot(list(have)))
    worker = Worker(index, 1, Handle(), started_at=0.0)  # type: ignore[arg-type]
    worker.hello, worker.state = hello, WorkerState.RUNNING
    slot.current = worker
    return slot


def snap(conn: ConnKey) -> SessionSnapshot:
    return SessionSnapshot(conn=conn, session_id=f"s{conn.shard}", seq=7, resume_url="ws://r")


def test_add_when_slots_run_puts_the_block_on_the_least_loaded_and_adopts_it_there() -> None:
    c = conns(6)
    slots, link = [running(0, c[:2]), running(1, [])], Link()
    plans: Any = {"discord": FakePlan(c)}
    slot = moves.add(slots, c[2:4], plans=plans, snapshots=[snap(c[2])], epochs={c[2]: 5, c[3]: 5}, link=link)
    assert slot.index == 1
    assert slots[1].desired.conns == c[2:4]
    assert slots[0].desired.conns == c[:2], "the other worker is not touched"
    [(identity, message)] = link.sent
    assert identity == slots[1].current.identity  # type: ignore[union-attr]
    assert isinstance(message, m.Adopt)
    assert [p.conns for p in message.parts] == [c[2:4]]
    assert [s.conn for s in message.snapshots] == [c[2]]
    assert dict(message.epochs) == {c[2]: 5, c[3]: 5}
    assert message.delivery == []


def test_add_when_a_connection_has_a_delivery_mode_the_adopt_carries_it() -> None:
    c = conns(4)
    slots, link = [running(0, [])], Link()
    modes = {c[1]: Delivery.DEDUPE, c[3]: Delivery.DEDUPE}  # c[3]: not in the block
    moves.add(
        slots, c[:2], plans={"discord": FakePlan(c)}, snapshots=[], epochs={}, link=link, delivery=modes
    )  # type: ignore[dict-item]
    [(_, message)] = link.sent
    assert isinstance(message, m.Adopt)
    assert message.delivery == [(c[1], Delivery.DEDUPE)]


def test_add_when_the_worker_is_still_starting_leaves_the_block_to_its_assign() -> None:
    c = conns(2)
    slots, link = [running(0, [], hello=False)], Link()
    moves.add(slots, c, plans={"discord": FakePlan(c)}, snapshots=[], epochs={}, link=link)  # type: ignore[dict-item]
    assert slots[0].desired.conns == c
    assert link.sent == [], "its Assign at hello carries the block"


def test_remove_when_a_block_leaves_releases_only_its_connections() -> None:
    c = conns(6)
    slots, link = [running(0, c[:3]), running(1, c[3:])], Link()
    asked = moves.remove(slots, [c[1], c[2]], link)
    assert slots[0].desired.conns == [c[0]]
    assert slots[1].desired.conns == c[3:]
    assert asked == [slots[0].current.identity]  # type: ignore[union-attr]
    [(_, message)] = link.sent
    assert message == m.Release([c[1], c[2]])


class PausedQueue:
    def __init__(self) -> None:
        self.paused = True
        self.waiting = 0

    def resume(self) -> None:
        self.paused = False

    async def near(self, conn: ConnKey) -> None:
        await asyncio.sleep(0)

    async def acquire(self, conn: ConnKey) -> None:
        await asyncio.sleep(0)

    def sent(self, conn: ConnKey) -> None: ...

    def release(self, conn: ConnKey, *, ready: bool) -> None: ...


def test_gate_with_hosts_when_not_armed_stays_shut_then_opens_once_every_block_is_held() -> None:
    queue, all_held = PausedQueue(), [False]
    grants = IdentifyGrants(queue, Link().send, first_identifies=0, opened_at=0.0, ready=lambda: all_held[0])
    grants.open_gate(100.0)
    assert queue.paused, "no claim yet: the gate is not armed, even long after the start"
    grants.expect(2, 100.0)
    queue.waiting = 2
    grants.open_gate(101.0)
    assert queue.paused, "every first identify is in line, but not every block has a holder"
    all_held[0] = True
    grants.open_gate(101.5)
    assert not queue.paused


def test_gate_with_hosts_when_blocks_stay_unheld_opens_after_the_gate_time() -> None:
    queue = PausedQueue()
    grants = IdentifyGrants(queue, Link().send, first_identifies=0, opened_at=0.0, ready=lambda: False)
    grants.expect(1, 10.0)
    grants.open_gate(14.0)
    assert queue.paused
    grants.open_gate(15.5)
    assert not queue.paused


def test_coordinator_url_when_a_password_is_given_apart_puts_it_in_the_url_once() -> None:
    def url(coordinator: str | None, password: str | None = None) -> str | None:
        return coordinator_url(
            FakeSettings(run_dir="/x", coordinator=coordinator, coordinator_password=password)
        )

    assert url(None) is None
    assert url("redis://h:6379/0") == "redis://h:6379/0"
    assert url("redis://h:6379/0", "p@ss/word") == "redis://:p%40ss%2Fword@h:6379/0"
    assert url("redis://u:own@h:6379/0", "x") == "redis://u:own@h:6379/0", "the URL's own credentials win"


def test_default_host_name_when_two_run_dirs_share_a_machine_differs_and_is_stable() -> None:
    a, b = default_host_name("/run/a"), default_host_name("/run/b")
    assert a != b
    assert a == default_host_name("/run/a")
