"""The supervisor's identify queue and budgets: in this process on one host, in Redis on several."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from shardrunner.cluster.supervisor.budgets import BudgetGrants
from shardrunner.cluster.supervisor.grants import IdentifyGrants
from shardrunner.identify.budget import Budget, BudgetQueue
from shardrunner.identify.local import LocalIdentifyQueue
from shardrunner.identify.protocol import StartLimit
from shardrunner.identify.redis_budget import RedisBudgetQueue
from shardrunner.identify.redis_queue import RedisIdentifyQueue
from shardrunner.protocol.keys import ConnKey

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.core import Supervisor

log = logging.getLogger("shardrunner.supervisor")


def _budgets(sup: Supervisor) -> list[Budget]:
    """The budgets of the platforms whose limits are budgets per key (Twitch's, per account)."""
    return [b for p in sup.plans.values() for b in getattr(p, "budgets", ())]


def local_queues(sup: Supervisor, limits: list[StartLimit], resumable: set[ConnKey]) -> None:
    """One host: the queue is paused until the first identifies of every connection are in, so
    that buckets start in shard order whichever worker boots first (IdentifyGrants.open_gate)."""
    queue = LocalIdentifyQueue(limits, sup.bucket_of, clock=sup.clock, paused=True)
    sup.grants = IdentifyGrants(
        queue,
        sup.link.send,
        # Only connections that identify (Twitch's take budgets instead).
        first_identifies=sum(
            1 for p in sup.plans.values() if p.limits for c in p.conns if c not in resumable
        ),
        opened_at=sup.clock.monotonic(),
        clock=sup.clock,
    )
    sup.budgets = BudgetGrants(BudgetQueue(_budgets(sup), clock=sup.clock), sup.link.send)


def shared_queues(sup: Supervisor, url: str, limits: list[StartLimit]) -> None:
    """Several hosts: both in Redis. The identify gate opens with the agent's first claims
    (``IdentifyGrants.expect``) once every block has a holder, so that the hosts' first identifies
    are all in line before the first goes."""
    agent = sup.hosts
    assert agent is not None
    name = sup.settings.cluster_name
    queue = RedisIdentifyQueue(url, name, limits, sup.bucket_of, host=agent.name, paused=True)
    sup.grants = IdentifyGrants(
        queue,
        sup.link.send,
        first_identifies=0,
        opened_at=sup.clock.monotonic(),
        ready=agent.gate_ready,
        clock=sup.clock,
    )
    sup.budgets = BudgetGrants(RedisBudgetQueue(url, name, _budgets(sup), host=agent.name), sup.link.send)


async def share_start_limits(sup: Supervisor) -> None:
    """Several hosts: each plan's daily start budget (Discord's ``session_start_limit``) becomes one
    budget in Redis (the lower ``remaining`` wins; every grant takes a start, a grant given back
    unsent returns it; grants wait for the reset once none remain). One host refuses to start
    without enough; a host among others cannot know how many it will identify, so it warns."""
    queue = sup.grants.queue if sup.grants is not None else None
    if not isinstance(queue, RedisIdentifyQueue):
        return
    for plan in sup.plans.values():
        limit = getattr(plan, "session_start_limit", None)
        if limit is None:
            continue
        state = await queue.set_start_limit(limit.total, limit.remaining, limit.reset_after / 1000)
        wanted = len(plan.conns)
        if state.remaining < wanted:
            log.warning(
                "%s: %d session starts left today for the whole bot and %d connections: identifies "
                "past them wait %.0f s for the reset",
                plan.name,
                state.remaining,
                wanted,
                state.reset_after,
            )
        elif state.remaining < 2 * wanted or state.remaining < state.total // 10:
            log.warning(
                "%s: only %d session starts left today (of %d), shared by every host",
                plan.name,
                state.remaining,
                state.total,
            )


async def close_shared_queues(sup: Supervisor) -> None:
    """Close the Redis queues (their background calls flushed first)."""
    for holder in (sup.grants, sup.budgets):
        close = getattr(holder.queue, "close", None) if holder is not None else None
        if close is None:
            continue
        with contextlib.suppress(Exception):
            result = close()
            if asyncio.iscoroutine(result):
                await result
