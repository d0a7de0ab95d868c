"""The shard's outbound side: IDENTIFY, and the commands bots send (presence, member requests...)."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

from shardrunner.clock import Clock, Flag, wait_with_timeout
from shardrunner.gateway.connection import CommandRejected, ConnState, NotReady
from shardrunner.gateway.discord import views
from shardrunner.gateway.discord.options import ShardOptions
from shardrunner.gateway.limiter import CommandLimiter
from shardrunner.gateway.transport import Connection
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import (
    API_VERSION,
    COMMAND_WINDOW_S,
    COMMANDS_PER_WINDOW,
    MAX_PAYLOAD_BYTES,
    Op,
)
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.gateway")

#: Ops the shard sends itself; a command may not.
_OWN_OPS = frozenset({Op.HEARTBEAT, Op.IDENTIFY, Op.RESUME})


class PayloadTooLarge(CommandRejected):
    """A command would exceed Discord's 4096-byte limit; it was not sent."""


class Sending:
    """The part of :class:`~shardrunner.gateway.discord.shard.DiscordShard` that writes to the gateway."""

    if not TYPE_CHECKING:  # the shard's __slots__ name what it sets; mypy would check them here
        __slots__ = ()

    conn: ConnKey
    options: ShardOptions
    clock: Clock
    state: ConnState
    limiter: CommandLimiter
    session_id: str | None
    seq: int
    _conn: Connection | None
    _stopping: bool
    _ready_event: Flag
    _said_bad_hook: bool

    if TYPE_CHECKING:  # the shard's own (shard.py)

        async def _await_or_closed(
            self, conn: Connection, awaitable: Any, timeout: float | None
        ) -> tuple[bool, Any]: ...

    def _url(self, base: str) -> str:
        query = f"v={API_VERSION}&encoding=json"
        if self.options.compression is not Compression.NONE:
            query += f"&compress={self.options.compression.value}"
        return f"{base}/?{query}"

    def _identify_payload(self) -> dict[str, Any]:
        o = self.options
        d: dict[str, Any] = {
            "token": o.token,
            "properties": o.properties,
            "intents": o.intents,
            "shard": [self.conn.shard, self.conn.count],
            "large_threshold": o.large_threshold,
            "compress": False,
        }
        if o.presence is not None:
            d["presence"] = o.presence
        return {"op": Op.IDENTIFY, "d": d}

    async def _hooked_identify(self, conn: Connection) -> dict[str, Any] | None:
        """The IDENTIFY as the start hook changed it (its ``d`` without the token goes to the hook;
        the token and the shard pair are put back). None: the connection closed while it ran."""
        hook = self.options.start_hook
        assert hook is not None
        payload = self._identify_payload()
        d = payload["d"]
        shown = {k: v for k, v in d.items() if k != "token"}
        ok, changed = await self._await_or_closed(conn, hook(self.conn, shown), None)
        if not ok:
            return None
        try:
            hooked = {"op": payload["op"], "d": {**changed, "token": d["token"], "shard": d["shard"]}}
            views.encode(hooked)
        except Exception as exc:  # not a mapping, or not JSON: the default IDENTIFY, not a crash
            if not self._said_bad_hook:
                self._said_bad_hook = True
                log.error(
                    "%s: the identify hook's payload cannot be sent (%s); the default IDENTIFY goes "
                    "instead (logged once)",
                    self.conn,
                    exc,
                )
            return payload
        return hooked

    def _resume_payload(self) -> dict[str, Any]:
        d = {"token": self.options.token, "session_id": self.session_id, "seq": self.seq}
        return {"op": Op.RESUME, "d": d}

    def _send_now(self, conn: Connection, payload: dict[str, Any]) -> None:
        self.limiter.record()
        conn.send_text(views.encode(payload))

    async def send_command(self, body: Any, *, timeout: float = 30.0) -> None:
        """The platform-neutral command: ``body`` is ``{"op": int, "d": ...}``."""
        if not isinstance(body, dict) or not isinstance(body.get("op"), int) or set(body) - {"op", "d"}:
            raise CommandRejected(
                f"{self.conn}: a Discord command is {{'op': int, 'd': ...}}, not {body!r:.80}"
            )
        await self.send(body["op"], body.get("d"), timeout=timeout)

    async def send(self, op: int, d: Any, *, timeout: float = 30.0) -> None:
        """Send a gateway command once the shard is ready, within the outbound rate limit.

        Raises :class:`PayloadTooLarge` (never sent), :class:`CommandRejected` for an op the shard
        sends itself, or :class:`NotReady` if the shard was not ready, or no slot of the outbound
        limit was free, within ``timeout``.
        """
        if op in _OWN_OPS:
            raise CommandRejected(f"op {op} is sent by the shard itself")
        data = views.encode({"op": op, "d": d})
        if len(data) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"{self.conn}: op {op} payload is {len(data)} bytes, "
                f"over Discord's limit of {MAX_PAYLOAD_BYTES}"
            )
        deadline = self.clock.monotonic() + timeout
        while True:
            left = deadline - self.clock.monotonic()
            if self.state is ConnState.FATAL or self._stopping or left <= 0:
                raise NotReady(f"{self.conn} is not ready ({self.state.value}); op {op} not sent")
            if self.state is not ConnState.READY:
                with contextlib.suppress(TimeoutError):
                    await wait_with_timeout(self.clock, self._ready_event.wait(), left)
                continue
            try:
                await wait_with_timeout(self.clock, self.limiter.acquire(), left)
            except TimeoutError:
                raise NotReady(
                    f"{self.conn}: op {op} not sent within {timeout:g} s: the outbound limit "
                    f"({COMMANDS_PER_WINDOW} per {COMMAND_WINDOW_S:g} s, heartbeats first) is used up"
                ) from None
            conn = self._conn
            if conn is not None and self.state is ConnState.READY:
                conn.send_text(data)
                return

    async def update_presence(self, presence: dict[str, Any], *, timeout: float = 30.0) -> None:
        await self.send(Op.PRESENCE_UPDATE, presence, timeout=timeout)

    async def request_guild_members(self, guild_id: int, *, timeout: float = 30.0, **fields: Any) -> None:
        fields.setdefault("query", "")
        fields.setdefault("limit", 0)
        await self.send(Op.REQUEST_GUILD_MEMBERS, {"guild_id": str(guild_id), **fields}, timeout=timeout)

    async def update_voice_state(
        self, guild_id: int, channel_id: int | None, *, self_mute: bool = False, self_deaf: bool = False
    ) -> None:
        await self.send(
            Op.VOICE_STATE_UPDATE,
            {
                "guild_id": str(guild_id),
                "channel_id": None if channel_id is None else str(channel_id),
                "self_mute": self_mute,
                "self_deaf": self_deaf,
            },
        )
