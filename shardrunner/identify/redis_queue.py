"""The identify queue of a bot that runs on several hosts, in Redis.

The same rules as :class:`~shardrunner.identify.local.LocalIdentifyQueue`: each bucket of each
:class:`~shardrunner.identify.protocol.StartLimit` grants one identify per ``window`` (plus a
``margin``), counted from :meth:`RedisIdentifyQueue.sent`, not while the previous grant is held
(until released, or ``hold`` seconds); waiters are served lowest ``(generation, shard)`` first,
whichever host they wait on. Every decision is one Lua script (:mod:`.redis_lua`) on the server's
clock.

A grant carries a **fencing token** (a per-bucket counter, with the server's epoch). A grant not
sent within ``hold`` seconds expires and the next waiter goes; :meth:`stamp` with a superseded
token raises :class:`StaleGrant` (the host stalled past its grant: it must not identify), and
:meth:`fresh` checks the hold on the local clock (conservatively: from before the grant was asked)
without a round trip. The protocol's :meth:`sent` stamps in Redis behind the send.

A host with waiters sleeps until its bucket's window allows the next grant, then asks once per
``poll`` seconds until the holder releases and the waiter first in line (on whichever host) takes
it; a waiter whose host stopped asking for ``waiter_ttl`` seconds is dropped. A host asks nothing
of a bucket where none of its connections waits. Redis down: waiters wait (:attr:`down` says why) and go on
when it is back; the other calls raise :class:`~.coordinator.CoordinatorDown`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from dataclasses import dataclass

from shardrunner.identify.coordinator import Background, Coordinator, CoordinatorDown
from shardrunner.identify.local import MIN_MARGIN_S
from shardrunner.identify.protocol import BucketOf, StartLimit
from shardrunner.identify.redis_lua import GRANT, RELEASE, STAMP, START_LIMIT, WITHDRAW
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.identify")

#: Seconds between a host's asks for a bucket it waits on, by default.
POLL_S = 0.05


class StaleGrant(RuntimeError):
    """The grant was superseded (its hold ran out, or Redis forgot it): do not identify."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Permission for ``conn`` to identify: ``token`` fences it, ``deadline`` (local monotonic
    seconds) is when its hold ends at the latest."""

    conn: ConnKey
    bucket: tuple[str, int]
    token: str
    epoch: str
    deadline: float


@dataclass(frozen=True, slots=True)
class StartLimitState:
    """``session_start_limit`` as the cluster shares it."""

    remaining: int
    total: int
    reset_after: float


class _Waiter:
    """One of this host's connections in line: told near, then granted; ``present`` once in
    acquire; ``told``: the local time its host last told Redis of it."""

    __slots__ = ("conn", "fut", "near", "present", "told")

    def __init__(self, conn: ConnKey, loop: asyncio.AbstractEventLoop, present: bool) -> None:
        self.conn = conn
        self.fut: asyncio.Future[Grant] = loop.create_future()
        self.near: asyncio.Future[None] = loop.create_future()
        self.present = present
        self.told = 0.0


class _Bucket:
    __slots__ = ("hold", "lead", "margin", "task", "waiters", "wake", "window")

    def __init__(self, window: float, margin: float, hold: float, lead: float) -> None:
        self.window, self.margin, self.hold, self.lead = window, margin, hold, lead
        #: member -> this host's waiter
        self.waiters: dict[str, _Waiter] = {}
        self.task: asyncio.Task[None] | None = None
        #: Set to ask again at once (a resume, a release on this host).
        self.wake = asyncio.Event()


class RedisIdentifyQueue:
    """An :class:`~shardrunner.identify.protocol.IdentifyQueue` shared by hosts through Redis."""

    def __init__(
        self,
        url: str,
        cluster: str,
        limits: list[StartLimit],
        bucket_of: BucketOf,
        *,
        host: str | None = None,
        margin: float | None = None,
        hold: float | None = None,
        poll: float = POLL_S,
        waiter_ttl: float | None = None,
        paused: bool = False,
        timeout: float | None = None,
    ) -> None:
        self.coordinator = Coordinator(url, cluster, **({} if timeout is None else {"timeout": timeout}))
        self.limits = {limit.name: limit for limit in limits}
        self._bucket_of = bucket_of
        self.host = host or f"{socket.gethostname()}.{os.getpid()}.{id(self):x}"
        self._suffix = "@" + self.host
        self.poll = poll
        self.waiter_ttl = waiter_ttl if waiter_ttl is not None else max(2.0, 20 * poll)
        self.paused = paused
        self._buckets: dict[tuple[str, int], _Bucket] = {}
        for limit in limits:
            if limit.buckets < 1:
                raise ValueError(f"{limit.name}: a limit needs at least one bucket")
            slack = margin if margin is not None else max(limit.window * 0.01, MIN_MARGIN_S)
            for index in range(limit.buckets):
                self._buckets[(limit.name, index)] = _Bucket(
                    limit.window,
                    slack if limit.window > 0 else 0.0,
                    limit.window if hold is None else hold,
                    limit.lead,
                )
        c = self.coordinator
        self._grant, self._stamp, self._release = c.script(GRANT), c.script(STAMP), c.script(RELEASE)
        self._withdraw, self._start_limit = c.script(WITHDRAW), c.script(START_LIMIT)
        #: conn -> its grant, until released.
        self.grants: dict[ConnKey, Grant] = {}
        self._background = Background(self.coordinator, "identify")

    @property
    def down(self) -> str | None:
        """Why Redis cannot be reached now (None when it can)."""
        return self.coordinator.down

    @property
    def waiting(self) -> int:
        return sum(1 for b in self._buckets.values() for w in b.waiters.values() if not w.fut.done())

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        name = self._bucket_of(conn)
        if name not in self._buckets:
            raise ValueError(f"{conn}: no identify limit has bucket {name}")
        return name

    def _keys(self, name: tuple[str, int]) -> tuple[str, ...]:
        return tuple(self.coordinator.key("idq", *name, k) for k in ("state", "waiters", "seen", "present"))

    def _member(self, conn: ConnKey) -> str:
        return f"{conn.generation}:{conn.shard}:{conn.count}:{conn.platform}{self._suffix}"

    def resume(self) -> None:
        """Start taking grants (a queue created ``paused`` waits in line, but takes none)."""
        self.paused = False
        for name, bucket in self._buckets.items():
            bucket.wake.set()
            self._serve(name)

    async def acquire(self, conn: ConnKey) -> None:
        await self.grant(conn)

    def _enter(self, conn: ConnKey, *, present: bool) -> tuple[tuple[str, int], str, _Waiter]:
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        member = self._member(conn)
        waiter = bucket.waiters.get(member)
        if waiter is None or waiter.fut.done():
            waiter = bucket.waiters[member] = _Waiter(conn, asyncio.get_running_loop(), present)
        elif present and not waiter.present:
            waiter.present = True
            waiter.told = 0.0  # tell Redis at once: it may be granted now
            bucket.wake.set()
        self._serve(name)
        return name, member, waiter

    async def near(self, conn: ConnKey) -> None:
        """Stand in line (not connected yet); return when the turn of ``conn`` is near."""
        name, member, waiter = self._enter(conn, present=False)
        try:
            await asyncio.shield(waiter.near)
        except asyncio.CancelledError:
            if not waiter.present:
                self._leave(name, member, waiter)
            raise

    async def grant(self, conn: ConnKey) -> Grant:
        """Wait until ``conn`` may identify: its grant (kept in :attr:`grants` until released)."""
        name, member, waiter = self._enter(conn, present=True)
        fut = waiter.fut
        try:
            return await asyncio.shield(fut)
        except asyncio.CancelledError:
            if not fut.done():
                self._leave(name, member, waiter)
            elif not fut.cancelled():
                self.release(conn, ready=False)  # granted as the caller gave up: the next one goes
            raise

    def _leave(self, name: tuple[str, int], member: str, waiter: _Waiter) -> None:
        bucket = self._buckets[name]
        if bucket.waiters.get(member) is waiter:
            del bucket.waiters[member]
            waiter.fut.cancel()
            waiter.near.cancel()
            self._background.spawn(self._give_up(name, member))

    def _serve(self, name: tuple[str, int]) -> None:
        bucket = self._buckets[name]
        if bucket.waiters and (bucket.task is None or bucket.task.done()):
            bucket.task = asyncio.ensure_future(self._run(name))

    async def _run(self, name: tuple[str, int]) -> None:
        try:
            await self._ask(name)
        except Exception as exc:  # a bug or a bad answer: the waiters hear of it, not only the log
            log.exception("identify queue: bucket %s failed", name)
            for w in self._buckets[name].waiters.values():
                for fut in (w.fut, w.near):
                    if not fut.done():
                        fut.set_exception(exc)
            self._buckets[name].waiters.clear()

    async def _ask(self, name: tuple[str, int]) -> None:
        bucket = self._buckets[name]
        state_key, waiters_key, seen_key, present_key = self._keys(name)
        keys = [state_key, waiters_key, seen_key, self.coordinator.key("start_limit"), present_key]
        refresh = self.waiter_ttl / 4
        backoff = self.poll
        epoch = self.coordinator.epoch
        while bucket.waiters:
            asked = time.monotonic()
            pairs: list[object] = []
            for member, w in bucket.waiters.items():
                if asked - w.told >= refresh:
                    w.told = asked
                    pairs += [member, w.conn.generation * 2**24 + w.conn.shard, 1 if w.present else 0]
            args = [bucket.window, bucket.margin, bucket.hold, self.waiter_ttl, 0 if self.paused else 1]
            try:
                what, member, token, seconds, _holder, near, near_in = await self.coordinator.run(
                    self._grant, keys, [*args, self._suffix, bucket.lead, *pairs]
                )
            except CoordinatorDown:
                for w in bucket.waiters.values():
                    w.told = 0.0  # tell it again once it is back (it may have forgotten them)
                await asyncio.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                continue
            backoff = self.poll
            if self.coordinator.epoch != epoch:  # a server that forgot: tell it every waiter again
                epoch = self.coordinator.epoch
                for w in bucket.waiters.values():
                    w.told = 0.0
            for told in filter(None, map(bucket.waiters.get, near)):
                if not told.near.done():
                    told.near.set_result(None)
            if what == "granted" and self._granted(name, member, token, asked + float(seconds)):
                continue  # another of this host's waiters may be next
            # Before the bucket's next grant time nothing can change for anyone: sleep till then.
            # After it, ask each poll until the holder releases or the head's host takes it.
            wait = float(seconds) if what == "wait" else 0.0
            if wait > 0 and float(near_in) > 0 and any(not w.near.done() for w in bucket.waiters.values()):
                wait = min(wait, float(near_in))  # wake when the next in line is near
            delay = min(wait, refresh) if wait > 0 else self.poll
            await self._sleep(bucket, delay)

    @staticmethod
    async def _sleep(bucket: _Bucket, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bucket.wake.wait(), max(seconds, 0.001))
        bucket.wake.clear()

    def _granted(self, name: tuple[str, int], member: str, token: str, deadline: float) -> bool:
        """A grant for ``member`` came: whether it was news (not a grant this host holds already)."""
        bucket = self._buckets[name]
        waiter = bucket.waiters.pop(member, None)
        if waiter is None:
            conn = next((c for c, g in self.grants.items() if self._member(c) == member), None)
            if conn is not None:
                return False  # held here already
            # Nobody here waits for it any more: hand it back.
            lost = Grant(_conn(member), name, token, self.coordinator.epoch, deadline)
            self._background.retry(lambda: self._release_grant(lost), final=(StaleGrant,))
            return True
        conn, fut = waiter.conn, waiter.fut
        if not waiter.near.done():
            waiter.near.set_result(None)
        grant = Grant(conn, name, token, self.coordinator.epoch, deadline)
        self.grants[conn] = grant
        if fut.done():
            self.release(conn, ready=False)
        else:
            fut.set_result(grant)
        return True

    async def _give_up(self, name: tuple[str, int], member: str) -> None:
        _, waiters_key, seen_key, present_key = self._keys(name)
        with contextlib.suppress(CoordinatorDown):  # the waiter TTL drops it then
            await self.coordinator.run(self._withdraw, [waiters_key, seen_key, present_key], [member])

    def fresh(self, conn: ConnKey) -> bool:
        """Whether the grant of ``conn`` is still within its hold by the local clock (counted from
        before it was asked for, so never later than Redis counts it): the check a connection can
        make without a round trip before it identifies."""
        grant = self.grants.get(conn)
        return grant is not None and time.monotonic() < grant.deadline

    def sent(self, conn: ConnKey) -> None:
        """The IDENTIFY of ``conn`` went out now: its window is stamped in Redis in the background
        (a stale grant's stamp is refused and logged, and still pushes the window out). To refuse
        to identify on a stale grant, check :meth:`fresh` or await :meth:`stamp` first."""
        if conn in self.grants:
            self._background.retry(lambda: self._stamp_quietly(conn), final=(StaleGrant,))

    async def _stamp_quietly(self, conn: ConnKey) -> None:
        await self.stamp(conn)

    async def stamp(self, conn: ConnKey, token: str | None = None) -> float:
        """The IDENTIFY of ``conn`` goes out now, under ``token`` (default: its grant's): its
        bucket's window counts from here, the server's time returned. Raises :class:`StaleGrant`
        when the token was superseded."""
        grant = self.grants.get(conn)
        if grant is None and token is None:
            raise StaleGrant(f"{conn}: no identify grant")
        name = self.bucket_of(conn)
        bucket = self._buckets[name]
        token = token if token is not None else grant.token if grant else ""
        epoch = grant.epoch if grant else self.coordinator.epoch
        args = [bucket.window, bucket.margin, self._member(conn), token, epoch]
        what, at = await self.coordinator.run(self._stamp, [self._keys(name)[0]], args)
        if what != "ok":
            raise StaleGrant(f"{conn}: identify grant {token} was superseded: do not identify")
        return float(at)

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        """The identify of ``conn`` ended; or ``conn``, in line and not granted, leaves the line."""
        name = self.bucket_of(conn)
        member = self._member(conn)
        waiter = self._buckets[name].waiters.get(member)
        if waiter is not None and not waiter.fut.done():
            self._leave(name, member, waiter)
        grant = self.grants.pop(conn, None)
        if grant is not None:
            self._background.retry(lambda: self._release_grant(grant), final=(StaleGrant,))

    async def _release_grant(self, grant: Grant) -> None:
        keys = [self._keys(grant.bucket)[0], self.coordinator.key("start_limit")]
        member = self._member(grant.conn)
        await self.coordinator.run(self._release, keys, [member, grant.token, grant.epoch])
        self._buckets[grant.bucket].wake.set()
        self._serve(grant.bucket)

    async def set_start_limit(
        self, total: int, remaining: int, reset_after: float, period: float = 86400.0
    ) -> StartLimitState:
        """Record ``session_start_limit`` as the platform gave it (the lower ``remaining`` wins
        within one period); every grant then takes one start, a grant released unsent gives it back,
        and grants wait for the reset once none remain."""
        return await self._read_limit([total, remaining, reset_after, period])

    async def start_limit(self) -> StartLimitState | None:
        """``session_start_limit`` now, or None when it was never set."""
        state = await self._read_limit(["", "", "", ""])
        return state if state.total >= 0 else None

    async def _read_limit(self, args: list[object]) -> StartLimitState:
        remaining, total, after = await self.coordinator.run(
            self._start_limit, [self.coordinator.key("start_limit")], args
        )
        if remaining == "":
            return StartLimitState(-1, -1, 0.0)
        return StartLimitState(int(remaining), int(total), float(after))

    async def flush(self) -> None:
        """Wait for the calls made in the background (stamps, releases)."""
        await self._background.flush()

    async def close(self) -> None:
        for bucket in self._buckets.values():
            if bucket.task is not None:
                bucket.task.cancel()
            for w in bucket.waiters.values():
                w.fut.cancel()
                w.near.cancel()
        await self.flush()
        await self.coordinator.close()


def _conn(member: str) -> ConnKey:
    generation, shard, count, rest = member.split(":", 3)
    return ConnKey(rest.rsplit("@", 1)[0], int(generation), int(shard), int(count))
