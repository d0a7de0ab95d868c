"""Leases against a real redis-server: races, renewal and loss, release, epochs across a restart."""

from __future__ import annotations

import asyncio
import time

import pytest

from shardrunner.cluster.hosts.leases import Holder, LastHolder, Leases
from shardrunner.identify.coordinator import CoordinatorDown
from tests.cluster.hosts.conftest import MakeCoordinator, until_up
from tests.conftest import wait_for
from tests.redis_server import RedisServer


async def test_leases_when_two_hosts_race_each_block_is_claimed_once(coordinators: MakeCoordinator) -> None:
    a = Leases(await coordinators(), "a", ttl=5.0)
    b = Leases(await coordinators(), "b", ttl=5.0)
    for _ in range(5):
        got_a, got_b = await asyncio.gather(a.claim(list(range(16))), b.claim(list(range(15, -1, -1))))
        assert set(got_a) | set(got_b) == set(range(16))
        assert not set(got_a) & set(got_b)
        holders, last = await a.table(16)
        assert {i: h.host for i, h in holders.items()} == {
            **{i: "a" for i in got_a},
            **{i: "b" for i in got_b},
        }
        assert last == {}
        assert all(0 < h.ttl <= 5.0 for h in holders.values())
        await a.release(got_a)
        await b.release(got_b)
    assert await a.claim([]) == {}


async def test_leases_renew_when_held_keeps_and_after_expiry_detects_the_loss(
    coordinators: MakeCoordinator,
) -> None:
    a = Leases(await coordinators(), "a", ttl=0.3)
    b = Leases(await coordinators(), "b", ttl=5.0)
    held = await a.claim([0, 1])
    assert held == {0: 1, 1: 1}
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:  # renewed every ttl/5, the lease outlives its TTL
        assert await a.renew(held) == {0, 1}
        await asyncio.sleep(0.06)
    assert await b.claim([0, 1]) == {}
    assert await a.renew({0: 1}) == {0}

    async def expired() -> bool:  # polling renew() itself would keep the lease: ask the table
        return 1 not in (await b.table(2))[0]

    await wait_for(expired, 5.0, "block 1's lease to expire")
    holders, last = await b.table(2)
    assert set(holders) == {0}
    assert last == {1: LastHolder("a", 1, released=False)}, "orphaned: its holder did not release it"
    assert await b.claim([1]) == {1: 2}
    assert await a.renew({1: 1}) == set(), "taken: the old holder's renewal fails"
    assert await a.renew({}) == set()


async def test_leases_release_then_claim_gives_a_higher_epoch_and_marks_released(
    coordinators: MakeCoordinator,
) -> None:
    a = Leases(await coordinators(), "a", ttl=5.0)
    b = Leases(await coordinators(), "b", ttl=5.0)
    held = await a.claim([0, 1, 2])
    await a.release({0: held[0], 2: held[2]})
    holders, last = await b.table(3)
    assert holders == {1: Holder("a", 1, holders[1].ttl)}
    assert last == {0: LastHolder("a", 1, released=True), 2: LastHolder("a", 1, released=True)}
    assert await b.claim([0, 1, 2]) == {0: 2, 2: 2}
    await a.release({0: 1})  # not ours anymore: nothing changes
    holders, last = await b.table(3)
    assert holders[0] == Holder("b", 2, holders[0].ttl)
    assert last == {}


async def test_leases_when_redis_restarts_empty_epochs_still_increase(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    a = Leases(await coordinators(), "a", ttl=5.0)
    b = Leases(await coordinators(), "b", ttl=5.0)
    for _ in range(3):
        await a.release(await a.claim([0]))
    held_b = await b.claim([1])
    await a.table(2)  # a sees b's epoch of block 1
    redis_server.stop()
    lost_at_ms = time.time() * 1000
    redis_server.start()
    got = await until_up(lambda: a.claim([0, 1]))
    assert set(got) == {0, 1}
    assert all(e > lost_at_ms for e in got.values()), "above every epoch given before: the server's ms"
    assert await until_up(lambda: b.renew(held_b)) == set(), "b's lease was forgotten: lost"


async def test_leases_when_redis_restarts_empty_during_a_takeover_the_lapsed_holder_does_not_take_back(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    a = Leases(await coordinators(), "a", ttl=0.3)
    b = Leases(await coordinators(), "b", ttl=5.0)
    c = Leases(await coordinators(), "c", ttl=5.0)
    assert await a.claim([0, 1, 2]) == {0: 1, 1: 1, 2: 1}

    async def expired() -> bool:
        return not (await b.table(3))[0]

    await wait_for(expired, 5.0, "a's leases to expire (a stalled)")
    taken = await b.claim([0, 1])
    assert taken == {0: 2, 1: 2}
    for _ in range(3):  # b gives block 1 up and takes it again: epochs a never saw
        await b.release({1: taken[1]})
        taken[1] = (await b.claim([1]))[1]
    redis_server.stop()
    redis_server.start()
    assert await until_up(lambda: a.renew({0: 1, 1: 1, 2: 1}, lapsed=True)) == set(), (
        "forgotten while a's leases ran out: b may hold them (it does), a takes none back"
    )
    assert await until_up(lambda: b.renew({0: 2})) == {0}, "b's own, forgotten: taken back under its epoch"
    holders, _ = await until_up(lambda: c.table(3))
    assert (holders[0].host, holders[0].epoch) == ("b", 2)
    # Block 1's holder b is gone (died with the restart): a never saw its epochs, its claim is above.
    got = await a.claim([1, 2])
    assert set(got) == {1, 2}
    assert min(got.values()) > taken[1], "above every epoch given before Redis lost them"
    assert await b.renew({1: taken[1]}) == set(), "b's stale renewal finds a's lease"


async def test_leases_when_redis_is_down_raise_coordinator_down(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    a = Leases(await coordinators(), "a", ttl=5.0)
    held = await a.claim([0])
    redis_server.stop()
    for call in (a.claim([1]), a.renew(held), a.release(held), a.table(1)):
        with pytest.raises(CoordinatorDown, match=str(redis_server.port)):
            await call
    redis_server.start()
    (epoch,) = (await until_up(lambda: a.claim([1]))).values()
    assert epoch > 1, "Redis lost its data since a's claim: above the server's time in ms"


def test_leases_when_the_host_name_has_a_bar_refuse_it() -> None:
    with pytest.raises(ValueError, match=r"without '\|'"):
        Leases(None, "a|b", ttl=1.0)  # type: ignore[arg-type]


async def test_leases_renew_when_late_but_nobody_took_the_block_takes_it_back_under_its_epoch(
    coordinators: MakeCoordinator,
) -> None:
    a = Leases(await coordinators(), "a", ttl=0.3)
    b = Leases(await coordinators(), "b", ttl=5.0)
    assert await a.claim([0]) == {0: 1}

    async def expired() -> bool:
        return 0 not in (await b.table(1))[0]

    await wait_for(expired, 5.0, "the lease to expire")
    assert await a.renew({0: 1}) == {0}, "nobody took it: a late renewal keeps it"
    holders, _ = await b.table(1)
    assert (holders[0].host, holders[0].epoch) == ("a", 1)
    await a.release({0: 1})
    assert await a.renew({0: 1}) == set(), "released: a renewal does not take it back"


async def test_leases_when_redis_restarts_empty_a_standby_that_only_read_the_table_raises_the_floor(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    a = Leases(await coordinators(), "a", ttl=5.0)
    standby = Leases(await coordinators(), "s", ttl=5.0)
    for _ in range(3):
        await a.release(await a.claim([0]))
    assert (await a.claim([0])) == {0: 4}
    await standby.table(1)
    redis_server.stop()
    lost_at_ms = time.time() * 1000
    redis_server.start()
    fresh = Leases(await coordinators(), "f", ttl=5.0)  # started after the loss: knows nothing
    assert await until_up(lambda: standby.table(1)) == ({}, {}), "a died with the old Redis"
    (epoch,) = (await until_up(lambda: fresh.claim([0]))).values()
    assert epoch > lost_at_ms, "the standby's read raised the floor: above a's epoch 4"
