"""The client's lifecycle handlers: what a bot hears of shardrunner's connections.

``@client.on_shard_ready`` and its siblings register ``async def handler(info)`` for one lifecycle
event (``protocol/lifecycle.py``); ``info`` is the decoded :class:`Lifecycle` body (``info.shard``,
``info.conn``, ``info.session``, ``info.code``...). discord.py's ``on_shard_ready(shard_id)`` is
``on_shard_ready(info)`` here, with ``info.shard`` the shard id.

Lifecycle events are opt-in: registering a handler asks the group for that event. A client that
named its ``events`` gets the name added to them; one with ``events=None`` (every platform event)
joins with ``["*", name, ...]`` (``"*"``: every platform event). Register handlers before
:meth:`Client.start`: the join the workers see is made then. Listing a name (or ``shardrunner.*``)
in ``events`` works too, for a bot that iterates instead of registering handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from shardrunner.protocol import lifecycle as lc
from shardrunner.protocol.lifecycle import Lifecycle

if TYPE_CHECKING:
    from shardrunner.client.events import ClientEvent

__all__ = ["Lifecycle", "LifecycleHandler", "LifecycleHandlers"]

LifecycleHandler = Callable[[Lifecycle], Awaitable[None]]


class LifecycleHandlers:
    """The lifecycle side of :class:`~shardrunner.client.Client` (a mixin)."""

    # Set by Client.__init__; declared here for the methods below.
    events: list[str] | None
    #: Lifecycle names asked for beside every platform event (when ``events`` is None).
    lifecycle: list[str]
    _handlers: dict[str, list[Callable[[ClientEvent], Awaitable[None]]]]

    def on_lifecycle(self, name: str) -> Callable[[LifecycleHandler], LifecycleHandler]:
        """Register ``async def handler(info)`` for the lifecycle event ``name`` (``shardrunner.*``)."""
        if not lc.is_lifecycle(name) or name == lc.WILDCARD:
            raise ValueError(f"{name!r} is not a lifecycle event name (shardrunner.ready, ...)")

        def register(handler: LifecycleHandler) -> LifecycleHandler:
            self._want(name)

            async def call(event: ClientEvent) -> None:
                await handler(event.lifecycle)

            self._handlers.setdefault(name, []).append(call)
            return handler

        return register

    def _want(self, name: str) -> None:
        wanted = self.events if self.events is not None else self.lifecycle
        if name not in wanted and lc.WILDCARD not in wanted:
            wanted.append(name)

    def on_shard_ready(self, handler: LifecycleHandler) -> LifecycleHandler:
        """A connection's session started (Discord's READY; Twitch: logged in, channels joined).
        After an ``on_shard_disconnect``, a ready (not a resume) means the session was new: what
        happened in between was not replayed."""
        return self.on_lifecycle(lc.READY)(handler)

    def on_shard_resumed(self, handler: LifecycleHandler) -> LifecycleHandler:
        """A session resumed: what the connection missed was replayed before this (Discord)."""
        return self.on_lifecycle(lc.RESUMED)(handler)

    def on_shard_disconnect(self, handler: LifecycleHandler) -> LifecycleHandler:
        """A connection dropped and reconnects (``info.code``, ``info.reason``, ``info.resumable``)."""
        return self.on_lifecycle(lc.DISCONNECTED)(handler)

    def on_shard_fatal(self, handler: LifecycleHandler) -> LifecycleHandler:
        """A connection closed for good (``info.code``; ``info.reason`` says what to do)."""
        return self.on_lifecycle(lc.FATAL)(handler)

    def on_reshard_switch(self, handler: LifecycleHandler) -> LifecycleHandler:
        """A reshard's switch: this connection of the new set (``info.generation``) delivers alone."""
        return self.on_lifecycle(lc.SWITCHED)(handler)

    def on_channel_joined(self, handler: LifecycleHandler) -> LifecycleHandler:
        """Twitch: ``info.channel`` is read (joined, or joined again after a loss)."""
        return self.on_lifecycle(lc.CHANNEL_JOINED)(handler)

    def on_channel_failed(self, handler: LifecycleHandler) -> LifecycleHandler:
        """Twitch: ``info.channel`` cannot be read (``info.reason``); it is tried again later."""
        return self.on_lifecycle(lc.CHANNEL_FAILED)(handler)

    def on_channel_moved(self, handler: LifecycleHandler) -> LifecycleHandler:
        """Twitch: ``info.channel`` moved from the reader ``info.from_`` to ``info.to``."""
        return self.on_lifecycle(lc.CHANNEL_MOVED)(handler)
