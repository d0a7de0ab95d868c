"""What rebuilds a bot's view of one Discord session: the worker's state cache (``state_cache``).

A bot that starts after its shards are READY never sees READY nor the GUILD_CREATEs; without help
its cache would be empty after every deploy. With ``state_cache`` on, each shard's events also go
through a :class:`StateCache` (after the bus took them), which keeps:

- the session's READY, as received;
- per guild, its latest GUILD_CREATE and a log of the structural events that came after it
  (:data:`~shardrunner.protocol.discord.STATE_EVENTS`), raw bytes as received: nothing is decoded
  on the way but READY's guild ids and the small bodies that may be unavailable stubs (a
  GUILD_DELETE, a GUILD_CREATE under 256 bytes);
- a guild that left (GUILD_DELETE without ``unavailable``) that READY listed, as its GUILD_DELETE
  only (a tombstone: replayed, it removes READY's stub); one READY did not list is forgotten.

The bound (``state_cache_log``): when a guild's log reaches that many events it is folded into its
GUILD_CREATE (decoded once, the log applied, encoded again: :func:`fold`), so memory stays at
about one GUILD_CREATE per guild plus at most that many events, and nothing is lost; a guild with
a busy log pays one decode and encode of its body every ``state_cache_log`` structural events.

:meth:`StateCache.events` answers READY, one GUILD_CREATE per guild, then every log event in seq
order; :meth:`StateCache.mark` the ``(session, seq)`` the answer reflects (every event up to it).
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from shardrunner.protocol.discord import STATE_EVENTS
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey

DEFAULT_LOG: Final = 64
#: An unavailable guild object is ``{"id": "<snowflake>", "unavailable": true}``: well below this.
_STUB_MAX: Final = 256


class _Stub(msgspec.Struct):
    id: str = ""
    unavailable: bool = False


class _ReadyGuilds(msgspec.Struct):
    guilds: list[_Stub] = []


_decode_stub = msgspec.json.Decoder(_Stub).decode
_decode_ready = msgspec.json.Decoder(_ReadyGuilds).decode
_decode = msgspec.json.decode
_encode = msgspec.json.encode


class GuildState:
    """One guild: its latest GUILD_CREATE (None: a tombstone) and the events since."""

    __slots__ = ("create", "log")

    def __init__(self, create: Event | None, log: list[Event] | None = None) -> None:
        self.create = create
        self.log: list[Event] = log or []


class StateCache:
    """The state of one connection's current session, as its events came (see the module)."""

    def __init__(self, conn: ConnKey, max_log: int = DEFAULT_LOG) -> None:
        self.conn = conn
        self.max_log = max(1, max_log)
        self.ready: Event | None = None
        self.ready_guilds: set[int] = set()
        self.guilds: dict[int, GuildState] = {}
        self.session = ""
        self.seq = 0
        #: Logs folded into their GUILD_CREATE so far (the bound at work).
        self.folds = 0

    def observe(self, event: Event) -> None:
        """Take one event of the connection (every event: the mark moves with each)."""
        name = event.name
        if event.session == self.session and event.seq <= self.seq and self.ready is not None:
            return  # replayed after a resume from an earlier seq (a handoff rewinds): seen already
        self.session, self.seq = event.session, event.seq
        if name == "READY":
            self._on_ready(event)
            return
        key = event.key
        if name not in STATE_EVENTS or not isinstance(key, int) or self.ready is None:
            return
        if name == "GUILD_CREATE":
            if not _unavailable_stub(event.data):
                self.guilds[key] = GuildState(event)
        elif name == "GUILD_DELETE" and not _stub(event.data).unavailable:
            if key in self.ready_guilds:
                self.guilds[key] = GuildState(None, [event])  # READY's stub must go too
            else:
                self.guilds.pop(key, None)
        else:
            guild = self.guilds.get(key)
            if guild is None or guild.create is None:
                return  # before its GUILD_CREATE, which will hold it
            guild.log.append(event)
            if len(guild.log) >= self.max_log:
                guild.create = fold(guild.create, guild.log)
                guild.log = []
                self.folds += 1

    def _on_ready(self, event: Event) -> None:
        self.ready = event
        self.guilds = {}
        try:
            stubs = _decode_ready(event.data).guilds
        except msgspec.DecodeError:
            stubs = []
        self.ready_guilds = {int(g.id) for g in stubs if g.id.isdigit()}

    def mark(self) -> tuple[str, int]:
        """The ``(session, seq)`` :meth:`events` reflects; ``("", 0)`` while no READY was seen
        (nothing to give: not yet, or the session began before this cache)."""
        return ("", 0) if self.ready is None else (self.session, self.seq)

    def events(self) -> list[Event]:
        """READY, one GUILD_CREATE per guild, then the logged events in seq order (empty: no READY
        seen: the session began before this cache, e.g. resumed by a replacement worker)."""
        if self.ready is None:
            return []
        guilds = self.guilds.values()
        creates = [g.create for g in guilds if g.create is not None]
        logged = sorted((e for g in guilds for e in g.log), key=lambda e: e.seq)
        return [self.ready, *creates, *logged]

    def size(self) -> int:
        """Bytes of event bodies held (what ``status`` and the memory figures count)."""
        total = len(self.ready.data) if self.ready is not None else 0
        for g in self.guilds.values():
            total += (len(g.create.data) if g.create is not None else 0) + sum(len(e.data) for e in g.log)
        return total


def _unavailable_stub(data: bytes) -> bool:
    """An unavailable guild object (``{"id", "unavailable": true}``), told from a full guild
    without reading the full one: decoding a GUILD_CREATE of tens of KiB here would cost about
    100 us on the worker's receive path."""
    return len(data) < _STUB_MAX and _stub(data).unavailable


def _stub(data: bytes) -> _Stub:
    try:
        return _decode_stub(data)
    except msgspec.DecodeError:
        return _Stub()


def fold(create: Event, log: list[Event]) -> Event:
    """``create`` with ``log`` applied: one GUILD_CREATE that holds them (its seq the last one's)."""
    guild: dict[str, Any] = _decode(create.data)
    for event in log:
        apply(guild, event.name, _decode(event.data))
    last = log[-1] if log else create
    return Event(create.conn, last.session, last.seq, "GUILD_CREATE", create.key, _encode(guild), last.epoch)


def apply(guild: dict[str, Any], name: str, d: Any) -> None:
    """Apply one structural event's body ``d`` to a decoded guild (Discord's documented shapes)."""
    if not isinstance(d, dict):
        return
    if name == "GUILD_UPDATE":
        guild.update(d)
    elif name == "GUILD_DELETE":
        guild["unavailable"] = True  # an outage (a removal is never folded: it ends the entry)
    elif name in ("CHANNEL_CREATE", "CHANNEL_UPDATE"):
        _upsert(guild, "channels", d)
    elif name in ("THREAD_CREATE", "THREAD_UPDATE"):
        _upsert(guild, "threads", d)
    elif name in ("CHANNEL_DELETE", "THREAD_DELETE"):
        _remove(guild, "channels" if name == "CHANNEL_DELETE" else "threads", d.get("id"))
    elif name in ("GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE"):
        role = d.get("role")
        if isinstance(role, dict):
            _upsert(guild, "roles", role)
    elif name == "GUILD_ROLE_DELETE":
        _remove(guild, "roles", d.get("role_id"))
    elif name == "GUILD_EMOJIS_UPDATE":
        guild["emojis"] = d.get("emojis", [])
    elif name == "GUILD_STICKERS_UPDATE":
        guild["stickers"] = d.get("stickers", [])
    elif name.startswith("GUILD_MEMBER_"):
        _apply_member(guild, name, d)


def _apply_member(guild: dict[str, Any], name: str, d: dict[str, Any]) -> None:
    user = d.get("user")
    uid = user.get("id") if isinstance(user, dict) else None
    members: list[dict[str, Any]] = guild.setdefault("members", [])
    index = next((i for i, m in enumerate(members) if (m.get("user") or {}).get("id") == uid), None)
    body = {k: v for k, v in d.items() if k != "guild_id"}
    if name == "GUILD_MEMBER_ADD":
        if index is None:
            members.append(body)
        else:
            members[index] = body
        guild["member_count"] = int(guild.get("member_count") or 0) + 1
    elif name == "GUILD_MEMBER_REMOVE":
        if index is not None:
            del members[index]
        guild["member_count"] = max(0, int(guild.get("member_count") or 0) - 1)
    elif index is not None:  # an update of a member not held (a large guild's offline one): nothing
        members[index].update(body)


def _upsert(guild: dict[str, Any], field: str, item: dict[str, Any]) -> None:
    items: list[dict[str, Any]] = guild.setdefault(field, [])
    body = {k: v for k, v in item.items() if k != "guild_id"}
    for i, old in enumerate(items):
        if old.get("id") == item.get("id"):
            items[i] = body
            return
    items.append(body)


def _remove(guild: dict[str, Any], field: str, item_id: Any) -> None:
    items = guild.get(field)
    if isinstance(items, list):
        guild[field] = [i for i in items if i.get("id") != item_id]
