"""The controller's say in the supervisor's decisions: whether an automatic reshard starts, and
whether this host takes over blocks another host held. Without a controller, or for a hook it does
not override, the answer is the default (yes) at once and nothing is called.

Each hook runs under the controller's ``hook_timeout`` (:class:`~shardrunner.controller.guard.Guard`):
one that raises or hangs is logged once, and the default applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from shardrunner.cluster.hosts.leases import LastHolder
from shardrunner.controller.base import Controller, ReshardProposal, overridden, overrides
from shardrunner.controller.guard import Guard
from shardrunner.controller.lifecycle import attach
from shardrunner.controller.load import load_controller
from shardrunner.gateway.platform import Resize
from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.supervisor")


class SupervisorHooks:
    """The supervisor's view of its controller (``Supervisor.hooks``)."""

    def __init__(self, controller: Controller | None = None) -> None:
        self.controller: Controller | None = None
        self.guard: Guard | None = None
        self._reshard = self._lease = False
        if controller is not None:
            self.use(controller)

    def use(self, controller: Controller) -> None:
        self.controller = controller
        self.guard = Guard(controller)
        self._reshard = overrides(controller, "should_reshard")
        self._lease = overrides(controller, "take_lease")

    def load(self, spec: str, listeners: list[Callable[[Notice], None]] | None = None) -> None:
        """Load the controller the setting names (unless one was given; ``ControllerError``); with
        ``listeners`` (the supervisor's ``lifecycle_listeners``), add the controller's lifecycle
        listener there when it has callbacks."""
        if self.controller is None and spec:
            controller = load_controller(spec)
            self.use(controller)
            hooks = ", ".join(overridden(controller)) or "none"
            log.info("controller %s loaded; the hooks it overrides: %s", spec, hooks)
        if listeners is not None:
            attach(self.controller, listeners, self.guard)

    def status(self) -> dict[str, Any] | None:
        """What ``status`` shows of the controller (None: there is none)."""
        if self.controller is None or self.guard is None:
            return None
        cls = type(self.controller)
        return {
            "name": f"{cls.__module__}.{cls.__qualname__}",
            "hooks": overridden(self.controller),
            "failures": dict(self.guard.failures),
        }

    async def should_reshard(self, resize: Resize) -> bool:
        if self.guard is None or not self._reshard:
            return True
        proposal = ReshardProposal(
            platform=resize.platform,
            current=resize.current,
            count=resize.count,
            keys=resize.keys,
            fill=resize.fill,
            new_fill=resize.new_fill,
            reason=resize.reason,
        )
        return bool(await self.guard.call("should_reshard", True, proposal))

    async def take_leases(self, claim: list[int], last: dict[int, LastHolder], me: str) -> list[int]:
        """The blocks of ``claim`` to claim: those another host held only if the controller agrees
        (blocks never held, or last held by this host ``me``, are claimed without asking)."""
        if self.guard is None or not self._lease:
            return claim
        out = []
        for block in claim:
            holder = last.get(block)
            other = holder.host if holder is not None and holder.host != me else None
            if other is None or await self.guard.call("take_lease", True, block, other):
                out.append(block)
        return out
