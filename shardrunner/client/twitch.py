"""Twitch's conveniences on the client: an event's channel, tags and text, sending a chat message,
and an event's identity across two reading connections (backup readers).

A Twitch event's ``raw`` is its IRC line as Twitch sent it (the worker only peeks at it), and its
``data`` that line parsed here on first access: ``{"tags": {...}, "prefix": ..., "params": [...],
"raw": "..."}`` (tags unescaped); its ``name`` is the IRC command (PRIVMSG, USERNOTICE,
CLEARCHAT, CLEARMSG, ROOMSTATE, USERSTATE, NOTICE, JOIN, PART, WHISPER) and its ``key`` the channel
without ``#``. Sends go to the sending connection of an account (``endpoints`` names them), which
paces them under the account's message limits and answers with the id Twitch gave the message.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

from shardrunner.client.errors import ClientError
from shardrunner.protocol import irc
from shardrunner.protocol.envelope import RoutingKey
from shardrunner.protocol.keys import ConnKey

PLATFORM = "twitch"


class _Keyed(Protocol):
    @property
    def conn(self) -> ConnKey: ...
    @property
    def key(self) -> RoutingKey: ...
    @property
    def data(self) -> Any: ...


class TwitchEvent:
    """The Twitch side of :class:`~shardrunner.client.ClientEvent`."""

    __slots__ = ()

    @property
    def channel(self: _Keyed) -> str | None:
        """The channel (without ``#``) of a Twitch event; None for another platform or none."""
        key = self.key
        return key if isinstance(key, str) and self.conn.platform == PLATFORM else None

    @property
    def tags(self: _Keyed) -> dict[str, str]:
        """The IRC tags of a Twitch event (unescaped); empty for another platform."""
        if self.conn.platform != PLATFORM:
            return {}
        tags: dict[str, str] = self.data.get("tags") or {}
        return tags

    @property
    def text(self: _Keyed) -> str | None:
        """The trailing parameter (a PRIVMSG's message text); None when there is none."""
        if self.conn.platform != PLATFORM:
            return None
        params = self.data.get("params") or []
        return params[-1] if len(params) > 1 else None


#: Lines without an ``id`` that both readers of a channel get for one act of a moderator: the
#: server's timestamp with the target tells one from the next.
_MODERATION = frozenset({"CLEARCHAT", "CLEARMSG"})


def twitch_body(raw: bytes) -> dict[str, Any]:
    """A Twitch event's ``data``: its line parsed (the worker hands lines on unparsed), as
    ``{"tags": {...}, "prefix", "params": [...], "raw"}`` with the tags unescaped."""
    try:
        message = irc.parse(raw)
    except irc.IrcError as exc:
        return {
            "tags": {},
            "prefix": None,
            "params": [],
            "raw": raw.decode("utf-8", "replace"),
            "error": str(exc),
        }
    return {
        "tags": message.tags,
        "prefix": message.prefix,
        "params": message.params,
        "raw": raw.decode("utf-8", "replace"),
    }


def twitch_identity(name: str, data: bytes) -> Hashable:
    """A line's identity across readers: its ``id`` tag (Twitch's, unique per message and per
    channel copy of a shared-chat message); for CLEARCHAT and CLEARMSG, the channel, the server's
    timestamp and the target. None for the lines that describe a reader's own connection (JOIN,
    PART, ROOMSTATE, USERSTATE, NOTICE, the numerics): each reader's are its own, delivered as they
    are."""
    chat = irc.peek_chat(data)
    if chat is not None:
        return (name, chat[2]) if chat[2] else None
    try:
        message = irc.parse(data)
    except irc.IrcError:
        return None
    tags = message.tags
    ident = tags.get("id")
    if ident:
        return (name, ident)
    if name in _MODERATION and "tmi-sent-ts" in tags:
        target = tags.get("target-msg-id") or tags.get("target-user-id") or ""
        return (name, tags.get("room-id") or message.channel or "", tags["tmi-sent-ts"], target)
    return None


class _Commands(Protocol):
    @property
    def platforms(self) -> dict[str, Any]: ...
    async def command(
        self,
        platform: str,
        body: Any,
        *,
        conn: ConnKey | None = None,
        key: RoutingKey = None,
        timeout: float = 30.0,
    ) -> Any: ...


class TwitchCommands:
    """``client.send_chat(...)``, mixed into :class:`~shardrunner.client.Client`."""

    __slots__ = ()

    async def send_chat(
        self: _Commands,
        channel: str,
        text: str,
        *,
        reply_to: str | None = None,
        account: str | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Send ``text`` to ``channel`` as ``account`` (None: the cluster's default sender).

        The account's sending connection queues it and writes it under Twitch's message limits;
        this returns once Twitch confirmed it: ``{"id": ..., "channel": ..., "sent_at": ms}``.
        Raises :class:`ClientError` saying why it was not sent (``msg_ratelimit: ...``,
        ``msg_duplicate: ...``, ``msg_banned: ...``, ``queue_full: ...``, ``too_long: ...``).
        """
        described = self.platforms.get(PLATFORM) or {}
        senders: dict[str, str] = described.get("senders") or {}
        login = account or described.get("send_default")
        if login is None or login not in senders:
            which = f"account {account!r}" if account else "any account"
            raise ClientError(f"the cluster has no Twitch sending connection for {which}")
        body = {"channel": channel, "text": text, "reply_to": reply_to}
        result: dict[str, Any] = await self.command(
            PLATFORM, body, conn=ConnKey.parse(senders[login]), timeout=timeout
        )
        return result
