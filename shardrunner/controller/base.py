"""The controller: the hooks an operator overrides to change what shardrunner does, each with a
default that is what shardrunner does without one.

A controller is a subclass of :class:`Controller` named by the ``controller`` setting
(``--controller mybot.ops:Controller`` or ``path/to/file.py:Controller``). The supervisor and each
worker make one instance of it (with no arguments) at start; a hook runs in the process that makes
the decision it answers (the table in docs/controllers.md). Only the hooks a subclass overrides are
installed: a hook left alone costs nothing, on the hot path or elsewhere.

Two kinds of hooks:

- synchronous, on the hot path (:meth:`Controller.accept`, :meth:`Controller.route`): called for
  every event, inside the connection's receive callback. They must be quick and must not block: a
  call cannot be interrupted, so a sampled call that takes longer than :attr:`Controller.stall_after`
  turns the hook off for the rest of the process's life (one log line), and the default applies.
- asynchronous (``async def``: the start payloads, the decisions and the lifecycle callbacks): each
  call gets :attr:`Controller.hook_timeout` seconds, after which the default applies.

A hook that raises gets its default for that call; the first failure of each hook is logged with
the exception, later ones are only counted. The connection, the worker and the cluster live on.

Nothing here imports the cluster or the gateway: a bot's package subclasses this freely.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from shardrunner.protocol.envelope import RoutingKey
from shardrunner.protocol.keys import ConnKey


class FatalAction(enum.Enum):
    """What to do when a connection closes with a code reconnecting cannot help (Discord's 4004
    authentication failed, 4014 disallowed intents...; a Twitch login refused)."""

    #: Stop the whole cluster with the platform's advice (what shardrunner does without a controller).
    STOP = "stop"
    #: Leave this connection stopped and keep the others running (``status`` shows it fatal).
    KEEP = "keep"
    #: Start the connection again, afresh (no session to resume), after the worker's restart backoff.
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class ReshardProposal:
    """A reshard the automatic check found due (what ``shardrunner reshard --dry-run`` prints)."""

    platform: str
    #: Connections in the set now, and in the proposed set.
    current: int
    count: int
    #: Routing keys (Discord: guilds) the set serves, and how full it is now and would be.
    keys: int
    fill: float
    new_fill: float
    #: Why this count (one sentence).
    reason: str


class Controller:
    """The base of every controller: each hook below is the default behaviour; override those you
    want changed (see the module, and docs/controllers.md for when and where each runs)."""

    #: Seconds an asynchronous hook may take; past that its default applies to that call.
    hook_timeout: float = 2.0
    #: Seconds one sampled call of a synchronous hot-path hook may take; past that the hook is
    #: turned off in that process (logged once) and its default applies from then on.
    stall_after: float = 0.1

    # -- the hot path (synchronous, every event, in the workers) ---------------------------------
    def accept(self, platform: str, name: str, key: RoutingKey) -> bool:
        """Whether an event goes on the bus at all, from its envelope alone: the platform
        (``"discord"``), the event's name (``"TYPING_START"``; Twitch: the IRC command) and its
        routing key (Discord: the guild id, None for DMs; Twitch: the channel). A refused event is
        counted and dropped before the router: no group gets it and nothing holds it."""
        return True

    def route(self, group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
        """The member of ``group`` (among ``members``: the group's members on this worker) that
        gets this event, or None for the default (rendezvous hashing of the routing key, so one
        key's events stay in order on one member). Events moved off a member that left go by the
        default."""
        return None

    # -- how a connection starts (asynchronous, once per identify or login, in the workers) -------
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        """The IDENTIFY a Discord shard sends: ``payload`` is its ``d`` without the token
        (``properties``, ``intents``, ``shard``, ``large_threshold``, ``presence`` when set...).
        Return the payload to send (change presence, properties, intents per shard). The token
        and the ``shard`` pair are put back as they were. Runs before the shard asks for its
        identify grant, so it never lengthens the grant's hold."""
        return payload

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        """The capabilities a Twitch connection requests when it logs in as ``nick`` (each
        socket, replacements included). Dropping ``twitch.tv/membership`` saves the JOIN/PART
        traffic of big channels; ``twitch.tv/tags`` and ``twitch.tv/commands`` are always kept
        (the connection needs them). The token is never shown to the hook."""
        return caps

    # -- decisions (asynchronous) ----------------------------------------------------------------
    async def should_reshard(self, proposal: ReshardProposal) -> bool:
        """Supervisor: whether the automatic check may start this reshard now (asked at every
        check that finds one due; ``shardrunner reshard`` by an operator is not asked)."""
        return True

    async def take_lease(self, block: int, from_host: str) -> bool:
        """Supervisor, several hosts: whether this host claims ``block``, last held by
        ``from_host`` (it died, stalled or gave it up). Refused, it is asked again next beat."""
        return True

    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        """Worker: what to do when ``conn`` closed with the fatal ``code``."""
        return FatalAction.STOP

    # -- lifecycle callbacks (asynchronous; what they return is ignored) --------------------------
    # ``conn`` is the connection the notice is about (None for one about the cluster: a reshard,
    # a lease, a worker) and ``info`` its fields. They run as tasks: a slow one delays nothing.
    async def on_ready(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A connection's session started (Discord: READY; Twitch: logged in)."""

    async def on_resumed(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A connection resumed its session."""

    async def on_reconnecting(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A connection dropped and is being made again (the notice ``shardrunner.disconnected``)."""

    async def on_fatal(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A connection closed fatally (after :meth:`on_fatal_close` decided what follows)."""

    async def on_switched(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A reshard's switch: this connection of the new set delivers alone now."""

    async def on_channel_joined(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """Twitch: a channel is read (``info["channel"]``)."""

    async def on_channel_failed(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """Twitch: a channel cannot be read (``channel``, ``reason``); it is tried again later."""

    async def on_channel_moved(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """Twitch: a channel moved to another connection."""

    async def on_reshard_started(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A reshard started its new set."""

    async def on_reshard_switched(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A reshard's new set delivers now."""

    async def on_reshard_aborted(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A reshard was aborted (the old set goes on)."""

    async def on_lease_lost(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """This host lost blocks of connections (several hosts)."""

    async def on_lease_taken(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """This host took blocks of connections (several hosts)."""

    async def on_worker_crashed(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        """A worker process died and is being replaced."""


def overrides(controller: Controller, hook: str) -> bool:
    """Whether ``controller`` replaces ``hook`` (its class or the instance itself): only those are
    installed."""
    mine = getattr(controller, hook, None)
    base = getattr(Controller, hook)
    return getattr(mine, "__func__", mine) is not base


def overridden(controller: Controller) -> list[str]:
    """The hooks ``controller`` overrides, in the order of the class (for the start's log line)."""
    hooks = [name for name, value in vars(Controller).items() if callable(value) and not name.startswith("_")]
    return [name for name in hooks if overrides(controller, name)]
