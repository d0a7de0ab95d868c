"""The worker's connections, keyed by :class:`~shardrunner.protocol.keys.ConnKey`, for any platform.

Each connection runs in a task of its own. One that raises an unexpected exception does not take
the worker (or any other connection) down: the exception is logged with the connection's key,
counted and reported, and that connection alone is rebuilt from its session, so it resumes, after
a backoff. A fatal close (:class:`~shardrunner.gateway.connection.ConnFatalError`) is not retried:
it is reported for the supervisor to stop the cluster, unless a controller's ``on_fatal_close``
says to keep the others running (reported, with ``stop`` false) or to retry it (rebuilt afresh,
after the same backoff as a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shardrunner.bus import protocol as bp
from shardrunner.clock import Clock, Flag, wait_with_timeout
from shardrunner.cluster import messages as m
from shardrunner.cluster.worker.reports import conn_reports
from shardrunner.controller.base import FatalAction
from shardrunner.gateway.backoff import Backoff
from shardrunner.gateway.connection import (
    CommandRejected,
    ConnFatalError,
    ConnState,
    GatewayConnection,
    NotReady,
    Sink,
)
from shardrunner.gateway.platform import Platform, Reconfigurable, StatefulPlatform
from shardrunner.identify.budget import Budgets
from shardrunner.identify.protocol import IdentifyQueue
from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.worker")

#: A connection that ran this long before it crashed starts its backoff afresh.
STABLE_AFTER_S: Final = 60.0
RESTART_BACKOFF_BASE_S: Final = 1.0
RESTART_BACKOFF_CAP_S: Final = 60.0
#: How long a crashed connection gets to close resumably before it is rebuilt.
SALVAGE_TIMEOUT_S: Final = 5.0
_ERROR_CHARS: Final = 300
_UP: Final = frozenset({lifecycle.READY, lifecycle.RESUMED})
_DOWN: Final = frozenset({lifecycle.DISCONNECTED, lifecycle.FATAL})


def _no_notice(notice: Notice, epoch: int) -> None:
    """The table's notify when nobody listens (tests)."""


@dataclass(slots=True, eq=False)
class Entry:
    """One connection of the worker and what the worker knows of it beyond the connection itself."""

    conn: GatewayConnection
    platform: Platform
    config: bytes = field(repr=False)  # may hold the token
    backoff: Backoff
    task: asyncio.Task[None] | None = None
    crashes: int = 0
    last_error: str | None = None
    restarting: bool = False
    #: ``counters.keys_version`` when the keys were last reported (-1: never).
    keys_sent: int = -1
    #: The lease epoch its events carry (kept by a connection rebuilt after a crash).
    epoch: int = 0
    #: Set once it is being closed (released, handed off): a crash then does not restart it.
    closing: Flag = field(default_factory=Flag)
    #: Its session is up (ready or resumed said, no disconnect since): a crash is a disconnect.
    up: bool = False


class ConnTable:
    """Every connection the worker runs, whatever its platform."""

    def __init__(
        self,
        *,
        load: Callable[[str], Platform],
        identify: IdentifyQueue,
        on_failed: Callable[[m.ConnFailed], None],
        clock: Clock,
        name: str = "worker",
        budgets: Budgets | None = None,
        notify: Callable[[Notice, int], None] = _no_notice,
        on_fatal: Callable[[ConnKey, int], Awaitable[FatalAction]] | None = None,
    ) -> None:
        self._load = load
        #: Every connection's lifecycle notices, and the table's own (fatal, crashed), each with the
        #: lease epoch of the connection's entry (its events carry it: so must these).
        self._notify = notify
        self._on_fatal = on_fatal
        self._identify = identify
        self._budgets = budgets
        self._on_failed = on_failed
        self._clock = clock
        self._name = name
        self.entries: dict[ConnKey, Entry] = {}
        self.platforms: dict[str, Platform] = {}
        self._sink: Sink = _drop
        self._closing = asyncio.Event()

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ConnKey]:
        return iter(self.entries)

    def all_ready(self) -> bool:
        return bool(self.entries) and all(
            e.conn.state is ConnState.READY and not e.restarting for e in self.entries.values()
        )

    # -- starting -------------------------------------------------------------------------------
    def start(
        self,
        parts: list[m.PlatformPart],
        snapshots: list[SessionSnapshot],
        sink: Sink,
        epochs: Mapping[ConnKey, int] | None = None,
    ) -> int:
        """Build and run the connections of every part (beside those running: a connection that
        runs already is left alone); returns how many resume a session.

        ``epochs``: the lease epoch each connection stamps on its events (those not named: 0)."""
        self._sink = sink
        self._closing.clear()
        epochs = epochs or {}
        by_conn = {s.conn: s for s in snapshots}
        resuming = 0
        for part in parts:
            conns = [c for c in part.conns if c not in self.entries]
            if len(conns) < len(part.conns):
                log.warning(
                    "%s: already runs %d of the connections it was given",
                    self._name,
                    len(part.conns) - len(conns),
                )
            if not conns:
                continue
            platform = self.platforms.get(part.platform)
            if platform is None:
                platform = self.platforms[part.platform] = self._load(part.platform)
            mine = {c: by_conn[c] for c in conns if c in by_conn}
            resuming += len(mine)
            built = platform.build(conns, part.config, mine, sink, self._identify, self._budgets)
            for conn in built:
                backoff = Backoff(self._clock.random, RESTART_BACKOFF_BASE_S, RESTART_BACKOFF_CAP_S)
                entry = Entry(conn, platform, part.config, backoff, epoch=epochs.get(conn.conn, 0))
                conn.epoch = entry.epoch
                conn.notify = functools.partial(self._notice, entry)
                self.entries[conn.conn] = entry
                entry.task = asyncio.ensure_future(self._run(conn.conn))
        return resuming

    async def _run(self, key: ConnKey) -> None:
        while True:
            entry = self.entries.get(key)
            if entry is None:
                return
            conn = entry.conn
            started = self._clock.monotonic()
            afresh = False
            try:
                await conn.run()
                return
            except ConnFatalError as exc:
                verdict = FatalAction.STOP if self._on_fatal is None else await self._on_fatal(key, exc.code)
                if verdict is not FatalAction.RETRY or self._closing.is_set() or entry.closing.is_set():
                    self._notice(
                        entry, Notice(lifecycle.FATAL, key, {"code": exc.code, "reason": exc.advice})
                    )
                    self._on_failed(m.ConnFailed(key, exc.code, str(exc), verdict is FatalAction.STOP))
                    return
                entry.last_error = str(exc)[:_ERROR_CHARS]
                entry.restarting = True
                delay = entry.backoff.next()
                log.warning("%s: the controller retries %s afresh in %.1f s", self._name, exc, delay)
                afresh = True  # a fatal close leaves no session worth resuming
            except Exception as exc:
                if self._closing.is_set() or entry.closing.is_set():
                    return  # it was being closed anyway
                if entry.up:  # its session drops with it; the rebuild resumes it
                    why = f"crashed: {type(exc).__name__}"
                    resumable = conn.session_id is not None and conn.resume_url is not None
                    fields = {"code": None, "reason": why, "resumable": resumable}
                    self._notice(entry, Notice(lifecycle.DISCONNECTED, key, fields))
                entry.crashes += 1
                entry.last_error = f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
                entry.restarting = True
                if self._clock.monotonic() - started >= STABLE_AFTER_S:
                    entry.backoff.reset()
                delay = entry.backoff.next()
                log.exception(
                    "%s: %s crashed (%d so far); restarting it alone in %.1f s, resuming",
                    self._name,
                    key,
                    entry.crashes,
                    delay,
                )
            snapshot = None if afresh else await self._salvage(conn)
            with contextlib.suppress(TimeoutError):
                await wait_with_timeout(self._clock, entry.closing.wait(), delay)
            if self._closing.is_set() or entry.closing.is_set() or self.entries.get(key) is not entry:
                return
            fresh = entry.platform.build(
                [key],
                entry.config,
                {key: snapshot} if snapshot else {},
                self._sink,
                self._identify,
                self._budgets,
            )[0]
            fresh.counters = conn.counters  # one connection, one history: its counts go on
            fresh.epoch = entry.epoch
            fresh.notify = functools.partial(self._notice, entry)
            entry.conn = fresh
            entry.restarting = False

    def _notice(self, entry: Entry, notice: Notice) -> None:
        """A notice of ``entry``'s connection (or of the table about it), on to the worker."""
        kind = notice.kind
        if kind in _UP:
            entry.up = True
        elif kind in _DOWN:
            entry.up = False
        self._notify(notice, entry.epoch)

    async def _salvage(self, conn: GatewayConnection) -> SessionSnapshot | None:
        """The session of a crashed connection, closed resumably if it still had a socket open."""
        try:
            snapshot = await wait_with_timeout(
                self._clock, conn.close(handoff=True, timeout=SALVAGE_TIMEOUT_S), SALVAGE_TIMEOUT_S + 1
            )
            if snapshot is not None:
                return snapshot
        except Exception:
            log.warning("%s: %s did not close cleanly after its crash", self._name, conn.conn, exc_info=True)
        try:
            return conn.snapshot()
        except Exception:
            return None

    # -- stopping -------------------------------------------------------------------------------
    async def close_all(self, *, handoff: bool = True) -> list[SessionSnapshot]:
        """Close every connection resumably; their sessions, for another process to resume.

        Without ``handoff`` the sessions end (a finished connection set): nothing is returned."""
        self._closing.set()
        return await self._close(list(self.entries.values()), handoff)

    async def release(self, conns: Iterable[ConnKey]) -> list[SessionSnapshot]:
        """Close these connections resumably and forget them (the others run on); their sessions.

        A connection not run here is skipped."""
        entries = [e for c in dict.fromkeys(conns) if (e := self.entries.pop(c, None)) is not None]
        return await self._close(entries, True)

    async def _close(self, entries: list[Entry], handoff: bool) -> list[SessionSnapshot]:
        for entry in entries:
            entry.closing.set()
        results = await asyncio.gather(
            *(e.conn.close(handoff=handoff) for e in entries), return_exceptions=True
        )
        await asyncio.gather(*(e.task for e in entries if e.task is not None), return_exceptions=True)
        snapshots: list[SessionSnapshot] = []
        for entry, result in zip(entries, results, strict=True):
            if isinstance(result, SessionSnapshot):
                snapshots.append(result)
            elif isinstance(result, BaseException):
                what = "hand off" if handoff else "close"
                log.warning("%s: %s did not %s cleanly: %s", self._name, entry.conn.conn, what, result)
        return snapshots

    def clear(self) -> None:
        self.entries.clear()

    def reconfigure(self, platform: str, config: bytes) -> bool:
        """The part of ``platform`` changed while running (Twitch: channels added or removed): its
        connections take the change, and a connection rebuilt later starts from it. False if the
        platform cannot change while running."""
        loaded = self.platforms.get(platform)
        if loaded is None:
            return True  # no connection of it here: nothing to change
        if not isinstance(loaded, Reconfigurable):
            return False
        running = {k: e.conn for k, e in self.entries.items() if k.platform == platform}
        for key in running:
            self.entries[key].config = config
        loaded.reconfigure(config, running)
        return True

    # -- reports and commands -------------------------------------------------------------------
    def reports(self, withheld: Mapping[ConnKey, int] | None = None) -> list[m.ConnReport]:
        """Every connection's report; its routing keys only when they changed since the last one.

        ``withheld``: per connection, the events the bus kept from every group (its router's)."""
        return conn_reports(self.entries, withheld or {})

    def low_water(self, held: dict[tuple[ConnKey, str], int]) -> list[tuple[ConnKey, int]]:
        """Per connection, the oldest seq of its current session that a group still holds."""
        out = []
        for key, e in self.entries.items():
            seq = held.get((key, e.conn.session_id or ""))
            if seq is not None:
                out.append((key, seq))
        return out

    async def command(self, command: bp.Command) -> tuple[str | None, Any]:
        """Send a bot's command on the connection it names or whose routing key it names.

        (None, what the connection answered) when sent, else (the reason in one sentence, None)."""
        platform = self.platforms.get(command.platform)
        if platform is None:
            return f"this worker runs no {command.platform} connections", None
        key = command.conn
        if key is None:
            mine = [k for k in self.entries if k.platform == command.platform]
            try:
                key = platform.owner(command.key, mine)
            except ValueError:
                return f"{command.key!r} is not a {command.platform} routing key", None
            if key is None:
                return (
                    f"no {command.platform} connection on this worker serves {command.key!r} "
                    "(it may be moving: retry)"
                ), None
        entry = self.entries.get(key)
        if entry is None:
            return f"{key} is not on this worker (it may be moving: retry)", None
        try:
            result = await entry.conn.send_command(command.body, timeout=command.timeout)
        except (CommandRejected, NotReady, ValueError) as exc:
            return str(exc), None
        return None, result

    def state(self, platform: str) -> tuple[list[Event], list[bp.StateMark]]:
        """What rebuilds a consumer's view of each connection of ``platform`` run here, in
        connection order, and what each answer reflects (a platform that keeps none: nothing)."""
        events: list[Event] = []
        marks: list[bp.StateMark] = []
        for key in sorted(k for k in self.entries if k.platform == platform):
            loaded = self.entries[key].platform
            if not isinstance(loaded, StatefulPlatform):
                continue
            mark = loaded.state_mark(key)
            if mark is not None:
                events.extend(loaded.state_events(key))
                marks.append(bp.StateMark(key, mark[0], mark[1]))
        return events, marks


def _drop(event: object) -> None:
    """The sink of a worker without a bus (tests): events go nowhere."""
