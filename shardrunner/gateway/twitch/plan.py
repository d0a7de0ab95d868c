"""Twitch chat as the supervisor runs it: the connection table, its budgets, and channel changes.

:func:`~.discovery.discover_from` reads the ``twitch`` section of the settings into accounts and
channels and makes a :class:`TwitchPlan`: the reading connections (:func:`~.placement.place`), a few spare
readers started idle, then one sending connection per account that sends. Every connection is a
``ConnKey("twitch", 0, index, count)``. Twitch has no identify: its starts count against budgets
per account (JOINs and logins), granted by the supervisor for every worker (:attr:`budgets`).

Channels added or removed while the cluster runs (``shardrunner channels``) change the table in
place, without a new set: a channel goes to a connection of a reader with room (an account within
its channel limit, or an anonymous reader), or to a spare reader; the table's new version goes to
the workers, which join and part.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from typing import Any

from shardrunner.gateway.platform import PlatformError, range_sizes
from shardrunner.gateway.twitch.config import (
    JOIN,
    JOIN_VERIFIED,
    LOGIN,
    LOGIN_VERIFIED,
    READ,
    SEND,
    ConnSpec,
    PartConfig,
)
from shardrunner.gateway.twitch.placement import ANONYMOUS, Account, PlacementError, normalize, place
from shardrunner.identify.budget import Budget
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.twitch import TwitchLimits

NAME = "twitch"


class TwitchPlan:
    """The Twitch connection set of a cluster (a :class:`~shardrunner.gateway.platform.PlatformPlan`)."""

    name = NAME
    generation = 0

    def __init__(
        self,
        *,
        accounts: dict[str, str],
        channels: Iterable[str],
        url: str,
        backup_url: str | None = None,
        anonymous: bool = True,
        per_conn: int = 50,
        max_rate: float = 200.0,
        backup: bool = False,
        spare: int | None = None,
        verified: Iterable[str] = (),
        moderates: dict[str, list[str]] | None = None,
        senders: list[str] | None = None,
        limits: TwitchLimits | None = None,
        send_queue: int = 1000,
        bypass_duplicates: bool = False,
        seed: int | None = None,
        workers: int = 1,
    ) -> None:
        #: Workers the cluster spreads the connections on: a channel's two readers go to two.
        self.workers = workers
        self.limits_ = limits or TwitchLimits()
        self.per_conn = per_conn
        self.max_rate = max_rate
        self.backup = backup
        self.anonymous = anonymous
        self._tokens = dict(accounts)
        self._moderates = {k: sorted(set(v)) for k, v in (moderates or {}).items()}
        self._verified = sorted(set(verified))
        self._random = random.Random(seed)
        self.configured = sorted({normalize(c) for c in channels})
        self.added: list[str] = []
        self.removed: list[str] = []
        #: Chat lines per second of busy channels, as measured in an earlier run (placement gives
        #: them fewer neighbours).
        self.rates: dict[str, float] = {}
        unknown = [s for s in (senders or []) if s not in accounts]
        if unknown:
            raise PlatformError(
                f"--twitch-senders names {', '.join(unknown)}, which --twitch-accounts does not hold"
            )
        self.senders = list(senders) if senders else list(accounts)
        self._spare_setting = spare
        self._url, self._backup_url = url, backup_url
        self._send_queue, self._bypass = send_queue, bypass_duplicates
        self.version = 0
        self._build(self.configured)

    # -- the table ---------------------------------------------------------------------------------
    def _accounts(self) -> list[Account]:
        return [Account(login, frozenset(self._moderates.get(login, ()))) for login in self._tokens]

    def _build(self, channels: list[str]) -> None:
        try:
            placed = place(
                channels,
                self._accounts(),
                anonymous=self.anonymous,
                per_conn=self.per_conn,
                max_rate=self.max_rate,
                rates=self.rates,
                backup=self.backup,
                channel_limit=self.limits_.max_channels,
            )
        except PlacementError as exc:
            raise PlatformError(str(exc)) from None
        specs = [
            ConnSpec(READ, self._login(c.reader), list(c.channels), backup=c.backup) for c in placed.conns
        ]
        readers = len(specs)
        spare = self._spare_setting if self._spare_setting is not None else max(2, math.ceil(readers / 4))
        pool = [ANONYMOUS] if self.anonymous else list(self._tokens)
        for i in range(spare if pool else 0):
            specs.append(ConnSpec(READ, self._login(pool[i % len(pool)]), spare=True))
        specs += [ConnSpec(SEND, login) for login in self.senders]
        if not specs:
            raise PlatformError("Twitch has nothing to run: no channels to read and no account to send with")
        self.specs = spread(specs, self.workers)
        self.conns = [ConnKey(NAME, self.generation, i, len(specs)) for i in range(len(specs))]
        self.limits: list[Any] = []  # no identify: budgets

    def _login(self, reader: str) -> str:
        if reader != ANONYMOUS:
            return reader
        return f"{ANONYMOUS}{self._random.randrange(10_000, 100_000_000)}"

    @property
    def budgets(self) -> list[Budget]:
        """The JOIN and login budgets per account, in the configured windows (``--twitch-join-window``)."""
        n = self.limits_
        v = TwitchLimits.verified(join_window=n.join_window, message_window=n.privmsg_window)
        return [
            Budget(JOIN, n.join_count, n.join_window),
            Budget(JOIN_VERIFIED, v.join_count, v.join_window),
            Budget(LOGIN, n.login_count, n.login_window),
            Budget(LOGIN_VERIFIED, v.login_count, v.login_window),
        ]

    @property
    def marked(self) -> list[ConnKey]:
        """Connections whose events the bus marks for the client's dedupe: every reader when there
        are backup readers (a channel's two readers deliver each message; the client keeps one)."""
        if not self.backup:
            return []
        return [c for c, s in zip(self.conns, self.specs, strict=True) if s.role == READ]

    def channels(self) -> list[str]:
        return sorted({ch for s in self.specs if s.role == READ for ch in s.channels})

    def sender_of(self, login: str | None = None) -> ConnKey | None:
        """The sending connection of ``login`` (None: the default account)."""
        for conn, spec in zip(self.conns, self.specs, strict=True):
            if spec.role == SEND and (login is None or spec.login == login):
                return conn
        return None

    # -- PlatformPlan ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"TwitchPlan({len(self.conns)} connections, {len(self.channels())} channels)"

    def bucket_of(self, conn: ConnKey) -> tuple[str, int]:
        raise PlatformError("Twitch connections do not identify: their starts count against budgets")

    def part_config(self) -> bytes:
        return PartConfig(
            conns=self.specs,
            tokens=self._tokens,
            url=self._url,
            backup_url=self._backup_url,
            verified=self._verified,
            moderates=self._moderates,
            limits=self.limits_,
            send_queue=self._send_queue,
            bypass_duplicates=self._bypass,
            version=self.version,
        ).encode()

    def check_starts(self, to_identify: int) -> None:
        return None

    def describe(self) -> dict[str, Any]:
        readers = [s for s in self.specs if s.role == READ]
        return {
            "channels": len(self.channels()),
            "readers": sum(1 for s in readers if not s.spare),
            "spare_readers": sum(1 for s in readers if s.spare),
            "backup_readers": self.backup,
            "channels_per_conn": self.per_conn,
            "accounts": sorted(self._tokens),
            "anonymous": self.anonymous,
            "senders": {
                s.login: str(c) for c, s in zip(self.conns, self.specs, strict=True) if s.role == SEND
            },
            "send_default": self.senders[0] if self.senders else None,
            "version": self.version,
        }

    # -- channels changed at run time -------------------------------------------------------------
    def restore(
        self, added: Iterable[str], removed: Iterable[str], rates: dict[str, float] | None = None
    ) -> None:
        """Apply the changes kept from earlier runs, before any worker starts (a fresh placement),
        and the channels' measured traffic."""
        self.added = sorted({normalize(c) for c in added} - set(self.configured))
        self.removed = sorted({normalize(c) for c in removed})
        self.rates = dict(rates or {})
        self._build(sorted((set(self.configured) | set(self.added)) - set(self.removed)))

    def add_channels(self, names: Iterable[str]) -> dict[str, Any]:
        """Place these channels on connections with room (PlatformError, changing nothing, if one
        cannot be placed); returns what changed."""
        wanted = sorted({normalize(n) for n in names})
        have = set(self.channels())
        new = [n for n in wanted if n not in have]
        specs = [ConnSpec(s.role, s.login, list(s.channels), s.backup, s.spare) for s in self.specs]
        placed: dict[str, list[str]] = {}
        for name in new:
            first = self._put(specs, name, avoid=None, backup=False)
            placed[name] = [str(self.conns[first])]
            if self.backup:
                placed[name].append(str(self.conns[self._put(specs, name, avoid=first, backup=True)]))
        if new:
            self.specs = specs
            self.version += 1
        self.added = sorted((set(self.added) | set(new)) - set(self.configured))
        self.removed = sorted(set(self.removed) - set(wanted))
        return {
            "added": new,
            "already": [n for n in wanted if n in have],
            "placed": placed,
            "version": self.version,
        }

    def remove_channels(self, names: Iterable[str]) -> dict[str, Any]:
        wanted = sorted({normalize(n) for n in names})
        have = set(self.channels())
        gone = [n for n in wanted if n in have]
        for spec in self.specs:
            if spec.role == READ:
                spec.channels = [c for c in spec.channels if c not in gone]
        if gone:
            self.version += 1
        self.added = sorted(set(self.added) - set(wanted))
        self.removed = sorted(set(self.removed) | (set(gone) & set(self.configured)))
        return {"removed": gone, "unknown": [n for n in wanted if n not in have], "version": self.version}

    def _put(self, specs: list[ConnSpec], name: str, *, avoid: int | None, backup: bool) -> int:
        """The index of the connection that now reads ``name`` (added to its channels)."""
        taken = set() if avoid is None else {specs[avoid].login}
        if avoid is not None and specs[avoid].login.startswith(ANONYMOUS):
            taken = set()  # anonymous connections are logins of their own: only avoid that connection
        where = _ranges(len(specs), self.workers)
        candidates = []
        for i, spec in enumerate(specs):
            if spec.role != READ or i == avoid or spec.login in taken or name in spec.channels:
                continue
            if len(spec.channels) >= self.per_conn or not self._room(specs, spec.login, name):
                continue
            load = sum(self.rates.get(c, 0.0) for c in spec.channels)
            if spec.channels and load + self.rates.get(name, 0.0) > self.max_rate:
                continue
            # Prefer another worker than the first reader's, a connection of the same kind (backup or
            # not) already running, then a spare.
            same_worker = avoid is not None and where[i] == where[avoid]
            candidates.append((same_worker, spec.spare, spec.backup != backup, len(spec.channels), i))
        if not candidates:
            raise PlatformError(
                f"no reading connection has room for #{name}: every connection holds {self.per_conn} "
                "channels or its account is at its channel limit, and no spare reader is left; restart "
                "the cluster to place the channels afresh (or set --twitch-spare-readers higher)"
            )
        index = min(candidates)[-1]
        specs[index].channels.append(name)
        specs[index].spare = False
        specs[index].backup = specs[index].backup or backup
        return index

    def _room(self, specs: list[ConnSpec], login: str, name: str) -> bool:
        if login.startswith(ANONYMOUS) or name in self._moderates.get(login, ()):
            return True
        moderated = set(self._moderates.get(login, ()))
        held = {
            c for s in specs if s.role == READ and s.login == login for c in s.channels if c not in moderated
        }
        return len(held) < self.limits_.max_channels


def _ranges(count: int, workers: int) -> list[int]:
    """The worker range of each position of a set of ``count`` connections."""
    return [w for w, size in enumerate(range_sizes(count, workers)) for _ in range(size)]


def spread(specs: list[ConnSpec], workers: int) -> list[ConnSpec]:
    """``specs`` in the order that puts a channel's backup reader in another worker's range than its
    first reader (the cluster gives each worker a consecutive range: :func:`range_sizes`), and
    shares readers, spares and senders out evenly."""
    sizes = range_sizes(len(specs), workers)
    if len(sizes) < 2:
        return specs
    buckets: list[list[ConnSpec]] = [[] for _ in sizes]
    of_channel: dict[str, int] = {}

    def put(spec: ConnSpec, forbidden: set[int]) -> None:
        room = [w for w in range(len(sizes)) if len(buckets[w]) < sizes[w]]
        allowed = [w for w in room if w not in forbidden] or room
        w = max(allowed, key=lambda b: (sizes[b] - len(buckets[b]), -b))
        buckets[w].append(spec)
        for ch in spec.channels:
            of_channel.setdefault(ch, w)

    for spec in specs:
        if spec.role == READ and not spec.backup and not spec.spare:
            put(spec, set())
    for spec in specs:
        if spec.role == READ and spec.backup:
            put(spec, {of_channel[ch] for ch in spec.channels if ch in of_channel})
    for spec in specs:
        if spec.spare or spec.role != READ:
            put(spec, set())
    return [spec for bucket in buckets for spec in bucket]
