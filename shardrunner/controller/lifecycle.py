"""From lifecycle notices to a controller's callbacks.

The supervisor and the workers fan their lifecycle notices (``Notice(kind, conn, fields)``) out to
listeners: plain callables that take a notice. :func:`lifecycle_listener` makes the one listener
of a controller: it finds the callback for the notice's kind (``"shardrunner.ready"`` ->
``on_ready``, ``"shardrunner.disconnected"`` -> ``on_reconnecting``; the prefix may be left out,
and dots and dashes count as underscores: ``"reshard.started"`` -> ``on_reshard_started``) and, if the
controller overrides it, runs it as a task under the controller's ``hook_timeout`` (contained by
its :class:`~shardrunner.controller.guard.Guard`). A notice of a kind the controller does not
handle costs one dictionary lookup.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Final

from shardrunner.controller.base import Controller, overrides
from shardrunner.controller.guard import Guard
from shardrunner.protocol.lifecycle import PREFIX, Notice

#: Notice kind (without :data:`PREFIX`) -> the controller's callback for it.
CALLBACKS: Final[Mapping[str, str]] = {
    **{
        kind: f"on_{kind}"
        for kind in (
            "ready",
            "resumed",
            "reconnecting",
            "fatal",
            "switched",
            "channel_joined",
            "channel_failed",
            "channel_moved",
            "reshard_started",
            "reshard_switched",
            "reshard_aborted",
            "lease_lost",
            "lease_taken",
            "worker_crashed",
        )
    },
    # The worker's name for a connection that dropped and reconnects.
    "disconnected": "on_reconnecting",
}


def callback_of(kind: str) -> str | None:
    """The callback a notice of ``kind`` goes to (``shardrunner.ready`` -> ``on_ready``), or None."""
    if kind.startswith(PREFIX):
        kind = kind[len(PREFIX) :]
    return CALLBACKS.get(kind.replace(".", "_").replace("-", "_"))


def handles_lifecycle(controller: Controller) -> bool:
    """Whether the controller overrides any lifecycle callback (else nothing needs wiring)."""
    return any(overrides(controller, name) for name in CALLBACKS.values())


class LifecycleListener:
    """One controller's listener (a callable taking a notice; see the module)."""

    def __init__(self, controller: Controller, guard: Guard | None = None) -> None:
        self.guard = guard or Guard(controller)
        self.wanted = frozenset(name for name in CALLBACKS.values() if overrides(controller, name))
        #: The callbacks running now (a task nobody references may be collected before it ends).
        self.tasks: set[asyncio.Task[None]] = set()

    def __call__(self, notice: Notice) -> None:
        name = callback_of(notice.kind)
        if name is None or name not in self.wanted:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.guard.fail(name, "was given a notice outside the event loop")
            return
        task = loop.create_task(self.guard.call(name, None, notice.conn, notice.fields))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


def attach(
    controller: Controller | None, listeners: list[Callable[[Notice], None]], guard: Guard | None = None
) -> LifecycleListener | None:
    """Append ``controller``'s listener to a process's ``lifecycle_listeners`` when it overrides a
    callback (nothing otherwise); ``guard``: the process's, so each hook is logged once per process."""
    if controller is None or not handles_lifecycle(controller):
        return None
    listener = LifecycleListener(controller, guard)
    listeners.append(listener)
    return listener


def lifecycle_listener(controller: Controller, guard: Guard | None = None) -> Callable[[Notice], None]:
    """The listener that hands each notice to ``controller``'s callback for its kind (see the
    module). Call it from the event loop's thread; each callback runs as a task of that loop."""
    return LifecycleListener(controller, guard)
