"""The Redis connection the networked identify queue and budgets share (several hosts, one bot).

Every key is under ``shardrunner:{cluster}:`` (the braces are a Redis Cluster hash tag: one bot's keys
live on one node, so that one script may touch them all). Decisions are Lua scripts, run with
``EVALSHA`` (redis-py loads a script again when a restarted server answers ``NOSCRIPT``), and take
their time from the server's ``TIME``: one clock, whatever the hosts' clocks say.

A call to a server that is down or unreachable raises :class:`CoordinatorDown` within
``timeout`` seconds, naming the URL without its password; the pool connects again on the next call,
so an object that got the error recovers by itself once the server is back.

A server that comes back empty (restarted without persistence) has forgotten when the last
identifies went out. Each object remembers the ``epoch`` (a random id the first caller stores) it
saw; a script that finds another epoch, or none, treats the state it finds missing as used up for
one window (a bucket's next grant one window out, a budget full), never as free.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
import redis.exceptions

log = logging.getLogger("shardrunner.identify")

#: Seconds to connect to, or wait for an answer from, the coordinator before the call fails.
DEFAULT_TIMEOUT_S = 2.0

#: The Lua prelude of every script: ``now`` from the server, and the epoch check.
#: ARGV[1] is the epoch the caller knows ("" at first), ARGV[2] a new one to store if there is none.
#: ``lost`` is true when the caller knew an epoch that is not the server's: what it finds missing
#: was forgotten, not never used.
PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[2]
  redis.call('SET', KEYS[1], epoch)
end
local lost = ARGV[1] ~= '' and ARGV[1] ~= epoch
"""


#: What makes a call fail as "down": no connection, no answer in time, a server still loading its
#: data, or a replica that is read-only (a failover under way).
_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    OSError,
)


class CoordinatorDown(ConnectionError):
    """The coordinator (Redis) cannot be reached: what needs it waits, or fails with this."""


def redact(url: str) -> str:
    """``url`` without its password: in the user part (``redis://user:***@host:port/db``; a user
    part without a colon, often a password put where the user goes, as ``redis://***@host``) and in
    a ``password=`` query parameter (``unix:///run/redis.sock?password=***``). Never raises: a URL
    that does not parse loses everything up to its last ``@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        scheme, sep, rest = url.rpartition("://")
        return f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url
    out = url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if at:
        user = f"{userinfo.partition(':')[0]}:***" if ":" in userinfo else "***"
        out = out.replace(parts.netloc, f"{user}@{hostport}", 1)
    if parts.query:
        query = "&".join(
            "password=***" if item.partition("=")[0].lower() == "password" else item
            for item in parts.query.split("&")
        )
        out = out.replace(f"?{parts.query}", f"?{query}", 1)
    return out


class Coordinator:
    """One bot's keys in one Redis: scripts, the epoch, and every call counted (:attr:`calls`)."""

    def __init__(self, url: str, cluster: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        if not cluster or "{" in cluster or "}" in cluster:
            raise ValueError(f"a cluster name without braces is needed, not {cluster!r}")
        self.url = redact(url)
        self.prefix = f"shardrunner:{{{cluster}}}:"
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=True
        )
        self.epoch = ""
        #: Redis calls made (each script run, or each command): the cost of coordination.
        self.calls = 0
        #: Why the last call failed (None once a call went through again): for status and logs.
        self.down: str | None = None

    def key(self, *parts: object) -> str:
        return self.prefix + ":".join(str(p) for p in parts)

    def script(self, body: str) -> Any:
        """A script of ``PRELUDE`` + ``body``; run it with :meth:`run`."""
        return self.client.register_script(PRELUDE + body)

    async def run(self, script: Any, keys: Sequence[str], args: Sequence[object]) -> Any:
        """Run ``script`` with the epoch key first and the epoch arguments first; its result's
        first item is the server's epoch, kept, and the rest is returned."""
        self.calls += 1
        try:
            result = await script(
                keys=[self.key("epoch"), *keys], args=[self.epoch, secrets.token_hex(8), *args]
            )
        except _UNREACHABLE as exc:
            if self.down is None:
                log.warning("the coordinator at %s is unreachable (%s)", self.url, type(exc).__name__)
            self.down = f"the coordinator at {self.url} is unreachable ({type(exc).__name__})"
            raise CoordinatorDown(self.down) from None
        if self.down is not None:
            log.warning("the coordinator at %s is back", self.url)
        self.down = None
        self.epoch = result[0]
        return result[1:]

    async def close(self) -> None:
        await self.client.aclose()


class Background:
    """The calls a queue makes in the background (stamps, cancels, releases): each one that meets
    Redis down is tried again every second for a while (a late stamp only makes a window longer; a
    release or cancel not made ends with its hold or TTL); ``flush`` waits for them all."""

    def __init__(self, coordinator: Coordinator, what: str) -> None:
        self.coordinator = coordinator
        self.what = what
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def retry(
        self,
        call: Callable[[], Awaitable[None]],
        *,
        final: tuple[type[Exception], ...] = (),
        attempts: int = 30,
    ) -> None:
        """Run ``call`` in the background; an exception of ``final`` ends it with a warning."""
        self.spawn(self._retry(call, final, attempts))

    async def _retry(
        self, call: Callable[[], Awaitable[None]], final: tuple[type[Exception], ...], attempts: int
    ) -> None:
        for _ in range(attempts):
            try:
                await call()
                return
            except CoordinatorDown:
                await asyncio.sleep(1.0)
            except final as exc:
                log.warning("%s", exc)
                return
        log.warning("%s: a call was given up while %s", self.what, self.coordinator.down)

    async def flush(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
