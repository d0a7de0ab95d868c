"""A controller as a worker installs it: only the hooks its class overrides, each contained.

- ``accept`` / ``route``: the worker's router is a :class:`~shardrunner.bus.hooked.HookedRouter`
  with the guarded hooks (a stalled one is uninstalled, so the router goes back to the default);
  with neither overridden it is the plain :class:`~shardrunner.bus.router.Router`, unchanged.
- ``identify`` / ``twitch_login``: the platform's ``start_hook`` (``Startable``), set when the
  platform is loaded, before it builds a connection; an answer of the wrong shape (for
  ``identify``: not a dict, or one the shard's JSON encoder refuses) is a failure, and the payload
  the platform made is sent.
- ``on_fatal_close``: asked by the connection table when a connection closed fatally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from shardrunner.bus.hooked import HookedRouter
from shardrunner.bus.router import Limits, Router
from shardrunner.controller.base import Controller, FatalAction, overrides
from shardrunner.controller.guard import Guard
from shardrunner.controller.lifecycle import attach
from shardrunner.gateway.connection import StartHook
from shardrunner.gateway.discord.views import encode as encode_identify
from shardrunner.gateway.platform import Platform, Startable, load_platform
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

#: The hooks a worker installs (the lifecycle callbacks go through ``controller.lifecycle``).
WORKER_HOOKS: Final = ("accept", "route", "identify", "twitch_login", "on_fatal_close")


class WorkerHooks:
    """One worker's view of its controller (none: every hook is the default, nothing installed)."""

    def __init__(self, controller: Controller | None = None) -> None:
        self.controller = controller
        self.guard = Guard(controller) if controller is not None else None
        #: The worker's hooks the controller overrides (the only ones installed).
        self.overridden: frozenset[str] = frozenset(
            name for name in WORKER_HOOKS if controller is not None and overrides(controller, name)
        )

    def attach(self, listeners: list[Callable[[Notice], None]]) -> None:
        """Add the controller's lifecycle listener to the worker's ``lifecycle_listeners`` when it
        has callbacks (sharing this worker's guard)."""
        attach(self.controller, listeners, self.guard)

    def failures(self) -> dict[str, int]:
        """Per hook, the calls that failed in this worker (raised, timed out, stalled)."""
        return dict(self.guard.failures) if self.guard is not None else {}

    # -- the router ------------------------------------------------------------------------------
    def make_router(self, limits: Limits) -> Router:
        """The worker's router: hooked only if the controller filters or routes."""
        guard = self.guard
        if guard is None or not self.overridden & {"accept", "route"}:
            return Router(limits)
        router: HookedRouter | None = None

        def accept_off() -> None:
            if router is not None:
                router.accept = None

        def route_off() -> None:
            if router is not None:
                router.route = None

        router = HookedRouter(
            limits,
            accept=guard.accept(accept_off) if "accept" in self.overridden else None,
            route=guard.route(route_off) if "route" in self.overridden else None,
        )
        return router

    # -- the platforms ---------------------------------------------------------------------------
    def load(self, name: str, load: Callable[[str], Platform] = load_platform) -> Platform:
        """The worker's platform ``name``, with the start hook of the controller for it."""
        platform = load(name)
        hook = self.start_hook(name)
        if hook is not None and isinstance(platform, Startable):
            platform.start_hook = hook
        return platform

    def start_hook(self, platform: str) -> StartHook | None:
        guard = self.guard
        if guard is None:
            return None
        if platform == "discord" and "identify" in self.overridden:

            async def identify(conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
                answer: object = await guard.call("identify", payload, conn, dict(payload))
                if not isinstance(answer, dict):
                    guard.fail("identify", f"answered {type(answer).__name__}, not a dict")
                    return payload
                try:
                    encode_identify(answer)
                except Exception as exc:  # what the shard would send cannot be made of it
                    guard.fail("identify", f"answered a payload that cannot be encoded ({exc})")
                    return payload
                return answer

            return identify
        if platform == "twitch" and "twitch_login" in self.overridden:

            async def login(conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
                caps = list(payload["caps"])
                answer: object = await guard.call("twitch_login", caps, conn, payload["nick"], list(caps))
                if isinstance(answer, list | tuple) and all(isinstance(c, str) for c in answer):
                    return {**payload, "caps": list(answer)}
                guard.fail("twitch_login", f"answered {answer!r:.60}, not a list of capabilities")
                return payload

            return login
        return None

    # -- fatal closes ----------------------------------------------------------------------------
    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        """What to do with a connection closed fatally (the default, stop, without a controller)."""
        guard = self.guard
        if guard is None or "on_fatal_close" not in self.overridden:
            return FatalAction.STOP
        answer: object = await guard.call("on_fatal_close", FatalAction.STOP, conn, code)
        try:
            return FatalAction(answer)
        except ValueError:
            guard.fail("on_fatal_close", f"answered {answer!r:.60}, not a FatalAction")
            return FatalAction.STOP
