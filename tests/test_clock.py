"""The clock module's cheap primitives: the lazy Flag, RealClock's timer and shared randomness."""

from __future__ import annotations

import asyncio
import random
import sys

from shardrunner.clock import Flag, RealClock


async def test_flag_when_set_wakes_every_waiter_and_later_waits_return_at_once() -> None:
    flag = Flag()
    waiters = [asyncio.ensure_future(flag.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    flag.set()
    await asyncio.sleep(0)
    assert all(w.done() for w in waiters)
    assert flag.is_set()
    await asyncio.wait_for(flag.wait(), 1)  # set: returns without a future
    flag.clear()
    assert not flag.is_set()
    late = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    assert not late.done(), "cleared: a new wait waits again"
    flag.set()
    await asyncio.wait_for(late, 1)


async def test_flag_when_a_wait_is_cancelled_forgets_it_and_still_wakes_the_others() -> None:
    flag = Flag()
    gone = asyncio.ensure_future(flag.wait())
    kept = asyncio.ensure_future(flag.wait())
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    assert flag._waiters is not None
    assert len(flag._waiters) == 1
    flag.set()
    await asyncio.wait_for(kept, 1)
    assert gone.cancelled()


def test_flag_when_nothing_waits_is_smaller_than_an_asyncio_event() -> None:
    flag, event = Flag(), asyncio.Event()
    assert not hasattr(flag, "__dict__")
    assert sys.getsizeof(flag) < 100 < sys.getsizeof(event.__dict__) + sys.getsizeof(event._waiters)


async def test_real_clock_when_call_later_fires_once_and_a_cancelled_timer_never() -> None:
    clock = RealClock()
    fired: list[str] = []
    done = asyncio.get_running_loop().create_future()
    clock.call_later(0.0, lambda: fired.append("a") or done.set_result(None))
    clock.call_later(0.0, lambda: fired.append("b")).cancel()
    await asyncio.wait_for(done, 5)
    await asyncio.sleep(0)
    assert fired == ["a"]


def test_real_clock_when_given_no_rng_shares_one_and_when_given_one_uses_it() -> None:

    assert RealClock()._rng is RealClock()._rng, "one Mersenne Twister (2.5 KiB) for every shard"
    mine = random.Random(7)
    assert RealClock(mine)._rng is mine
