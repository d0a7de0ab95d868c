"""Sliding-window budgets (:mod:`.budget`) shared by several hosts, in Redis.

The same rules as :class:`~shardrunner.identify.budget.BudgetQueue`: at most ``limit`` uses of a
budget's key in any ``window`` seconds (plus the margin of :func:`~.budget.margin_for`), counted
from each ticket's :meth:`~RedisTicket.used`; waiters on one key served in the order they reached
Redis, whichever host asked. A ticket granted and never stamped (its host died) counts as written
``ticket_ttl`` seconds after its grant, so its use ends a window after that: a budget is never used
again early. A ticket stamped later than that counts again from its stamp.

A ledger is, under ``bq:<budget>:<key>:``, ``q`` (the waiters, a sorted set by arrival), ``seen``
(when their host last asked), ``n`` (the uses each asks for), ``tickets`` (granted uses by ticket),
``ends`` (when each ticket's uses stop counting) and ``seq`` (the arrival counter).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable

from shardrunner.identify.budget import Budget, margin_for
from shardrunner.identify.coordinator import Background, Coordinator, CoordinatorDown

log = logging.getLogger("shardrunner.identify")

_F = "local function f(x) return string.format('%.6f', x) end\n"

#: KEYS: epoch, q, seen, n, tickets, ends, seq. ARGV[3..8]: limit, window, margin, ticket TTL,
#: waiter TTL, host suffix; then (waiter, uses) pairs. Returns (seconds until the oldest use ends,
#: or '' to ask again soon; the waiters of this host granted).
GRANT = (
    _F
    + """
local limit, window, margin = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, wttl, suffix = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8]
if redis.call('EXISTS', KEYS[7]) == 0 then
  redis.call('SET', KEYS[7], '0')
  if lost then  -- forgotten, not unused: full for one window
    redis.call('HSET', KEYS[5], '!lost', limit)
    redis.call('ZADD', KEYS[6], f(now + window + margin), '!lost')
  end
end
local granted = {}
for i = 9, #ARGV, 2 do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[5], id) == 1 then
    table.insert(granted, id)
  else
    if not redis.call('ZSCORE', KEYS[2], id) then
      redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[7]), id)
      redis.call('HSET', KEYS[4], id, ARGV[i + 1])
    end
    redis.call('HSET', KEYS[3], id, f(now))
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', f(now))) do
  redis.call('HDEL', KEYS[5], id)
end
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', f(now))
local used = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  used = used + tonumber(redis.call('HGET', KEYS[5], id) or '0')
end
local wait = ''
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not head then break end
  local n = tonumber(redis.call('HGET', KEYS[4], head) or '1')
  if now - tonumber(redis.call('HGET', KEYS[3], head) or '0') > wttl then
    redis.call('ZREM', KEYS[2], head)
    redis.call('HDEL', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
  elseif string.sub(head, -#suffix) ~= suffix then
    break
  elseif used + n > limit then
    local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
    if oldest[2] then wait = f(tonumber(oldest[2]) - now) end
    break
  else
    used = used + n
    redis.call('HSET', KEYS[5], head, n)
    redis.call('ZADD', KEYS[6], f(now + ttl + window + margin), head)
    redis.call('ZREM', KEYS[2], head)
    redis.call('HDEL', KEYS[3], head)
    redis.call('HDEL', KEYS[4], head)
    table.insert(granted, head)
  end
end
return {epoch, wait, granted}
"""
)

#: KEYS: epoch, tickets, ends. ARGV[3..6]: ticket, uses, window, margin. Its uses end a window
#: after now (counted again if its TTL had already ended them).
USED = (
    _F
    + """
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], f(now + tonumber(ARGV[5]) + tonumber(ARGV[6])), ARGV[3])
return {epoch}
"""
)

#: KEYS: epoch, tickets, ends, q, seen, n. ARGV[3]: the ticket or waiter given up.
CANCEL = """
redis.call('HDEL', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZREM', KEYS[4], ARGV[3])
redis.call('HDEL', KEYS[5], ARGV[3])
redis.call('HDEL', KEYS[6], ARGV[3])
return {epoch}
"""

#: KEYS: epoch, tickets, ends. The uses counting now.
IN_USE = (
    _F
    + """
local used = 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '(' .. f(now), '+inf')) do
  used = used + tonumber(redis.call('HGET', KEYS[2], id) or '0')
end
return {epoch, tostring(used)}
"""
)


class RedisTicket:
    """``n`` granted uses of one budget's key: :meth:`used` or :meth:`cancel` (in the background;
    :meth:`RedisBudgetQueue.flush` waits for them)."""

    __slots__ = ("_done", "_queue", "id", "key", "n", "name")

    def __init__(self, queue: RedisBudgetQueue, name: str, key: str, ticket: str, n: int) -> None:
        self._queue, self.name, self.key, self.id, self.n = queue, name, key, ticket, n
        self._done = False

    def used(self) -> None:
        if not self._done:
            self._done = True
            self._queue._later(lambda: self._queue._used(self))

    def cancel(self) -> None:
        if not self._done:
            self._done = True
            self._queue._later(lambda: self._queue._cancel(self.name, self.key, self.id))


class _Ledger:
    __slots__ = ("budget", "keys", "margin", "task", "waiters", "wake")

    def __init__(self, budget: Budget, margin: float, keys: list[str]) -> None:
        self.budget, self.margin, self.keys = budget, margin, keys
        #: waiter id -> (uses, future, local time its host last told Redis)
        self.waiters: dict[str, tuple[int, asyncio.Future[RedisTicket], list[float]]] = {}
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()


class RedisBudgetQueue:
    """A :class:`~shardrunner.identify.budget.Budgets` whose ledgers are in Redis."""

    def __init__(
        self,
        url: str,
        cluster: str,
        budgets: list[Budget],
        *,
        host: str | None = None,
        margin: float | None = None,
        ticket_ttl: float = 30.0,
        poll: float = 0.05,
        waiter_ttl: float | None = None,
        timeout: float | None = None,
    ) -> None:
        self.coordinator = Coordinator(url, cluster, **({} if timeout is None else {"timeout": timeout}))
        self.budgets = {b.name: b for b in budgets}
        self._margin = margin
        self.ticket_ttl = ticket_ttl
        self.poll = poll
        self.waiter_ttl = waiter_ttl if waiter_ttl is not None else max(2.0, 20 * poll)
        self._suffix = "@" + (host or f"{socket.gethostname()}.{os.getpid()}.{id(self):x}")
        c = self.coordinator
        self._grant, self._used_script = c.script(GRANT), c.script(USED)
        self._cancel_script, self._in_use = c.script(CANCEL), c.script(IN_USE)
        self._ledgers: dict[tuple[str, str], _Ledger] = {}
        self._ids = itertools.count(1)
        self._background = Background(self.coordinator, "budget")

    @property
    def down(self) -> str | None:
        return self.coordinator.down

    def _ledger(self, name: str, key: str) -> _Ledger:
        ledger = self._ledgers.get((name, key))
        if ledger is None:
            budget = self.budgets.get(name)
            if budget is None:
                raise KeyError(f"unknown budget {name!r}; known: {', '.join(sorted(self.budgets))}")
            margin = margin_for(budget.window) if self._margin is None else self._margin
            k = self.coordinator.key
            keys = [k("bq", name, key, part) for part in ("q", "seen", "n", "tickets", "ends", "seq")]
            ledger = self._ledgers[(name, key)] = _Ledger(budget, margin, keys)
        return ledger

    async def acquire(self, name: str, key: str, n: int = 1) -> RedisTicket:
        """Wait until ``n`` uses of budget ``name`` for ``key`` fit, and take them."""
        ledger = self._ledger(name, key)
        if n < 1 or n > ledger.budget.limit:
            raise ValueError(f"{name}: {n} uses at once cannot fit a limit of {ledger.budget.limit}")
        waiter = f"{next(self._ids)}{self._suffix}"
        fut: asyncio.Future[RedisTicket] = asyncio.get_running_loop().create_future()
        ledger.waiters[waiter] = (n, fut, [0.0])
        if ledger.task is None or ledger.task.done():
            ledger.task = asyncio.ensure_future(self._run(name, key))
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            ledger.waiters.pop(waiter, None)
            if fut.done() and not fut.cancelled():
                fut.result().cancel()  # granted as the caller gave up: give the uses back
            else:
                fut.cancel()
                self._later(lambda: self._cancel(name, key, waiter))
            raise

    def pending(self, name: str, key: str) -> int:
        """Uses asked for on this host and not granted yet."""
        ledger = self._ledgers.get((name, key))
        return 0 if ledger is None else sum(n for n, fut, _ in ledger.waiters.values() if not fut.done())

    async def in_use(self, name: str, key: str) -> int:
        """Uses counting against the budget now, on every host (raises CoordinatorDown)."""
        ledger = self._ledger(name, key)
        (used,) = await self.coordinator.run(self._in_use, ledger.keys[3:5], [])
        return int(used)

    async def usage(self) -> list[tuple[str, str, int, int, int]]:
        """``(budget, key, in use on every host, limit, waiting here)`` of every key this host
        asked for that has uses or waiters now (raises CoordinatorDown)."""
        out = []
        for (name, key), ledger in sorted(self._ledgers.items()):
            used, waiting = await self.in_use(name, key), self.pending(name, key)
            if used or waiting:
                out.append((name, key, used, ledger.budget.limit, waiting))
        return out

    async def _run(self, name: str, key: str) -> None:
        ledger = self._ledgers[(name, key)]
        budget = ledger.budget
        refresh = self.waiter_ttl / 4
        backoff = self.poll
        epoch = self.coordinator.epoch
        while ledger.waiters:
            asked = time.monotonic()
            pairs: list[object] = []
            for waiter, (n, _, told) in ledger.waiters.items():
                if asked - told[0] >= refresh:
                    told[0] = asked
                    pairs += [waiter, n]
            args: list[object] = [budget.limit, budget.window, ledger.margin, self.ticket_ttl]
            args += [self.waiter_ttl, self._suffix]
            try:
                wait, granted = await self.coordinator.run(self._grant, ledger.keys, [*args, *pairs])
            except CoordinatorDown:
                for _, _, told in ledger.waiters.values():
                    told[0] = 0.0
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            backoff = self.poll
            if self.coordinator.epoch != epoch:  # a server that forgot: tell it every waiter again
                epoch = self.coordinator.epoch
                for _, _, told in ledger.waiters.values():
                    told[0] = 0.0
            for waiter in granted:
                entry = ledger.waiters.pop(waiter, None)
                if entry is None or entry[1].done():
                    self._later(functools.partial(self._cancel, name, key, waiter))  # nobody waits
                else:
                    entry[1].set_result(RedisTicket(self, name, key, waiter, entry[0]))
            if granted:
                continue
            delay = min(float(wait), refresh) if wait else self.poll
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ledger.wake.wait(), max(delay, 0.001))
            ledger.wake.clear()

    async def _used(self, ticket: RedisTicket) -> None:
        ledger = self._ledger(ticket.name, ticket.key)
        args = [ticket.id, ticket.n, ledger.budget.window, ledger.margin]
        await self.coordinator.run(self._used_script, ledger.keys[3:5], args)

    async def _cancel(self, name: str, key: str, ticket: str) -> None:
        ledger = self._ledger(name, key)
        keys = [ledger.keys[3], ledger.keys[4], ledger.keys[0], ledger.keys[1], ledger.keys[2]]
        await self.coordinator.run(self._cancel_script, keys, [ticket])
        ledger.wake.set()

    def _later(self, call: Callable[[], Awaitable[None]]) -> None:
        self._background.retry(call)

    async def flush(self) -> None:
        """Wait for the calls made in the background (stamps, cancels)."""
        await self._background.flush()

    async def close(self) -> None:
        for ledger in self._ledgers.values():
            if ledger.task is not None:
                ledger.task.cancel()
            for _, fut, _ in ledger.waiters.values():
                fut.cancel()
        await self.flush()
        await self.coordinator.close()
