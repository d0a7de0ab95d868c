"""Containment: a controller's hook that raises, hangs or stalls never takes a connection down.

:class:`Guard` calls the hooks of one controller in one process:

- :meth:`Guard.call` runs an asynchronous hook under the controller's ``hook_timeout``; a timeout or
  an exception gives the hook's default for that call.
- :meth:`Guard.accept` and :meth:`Guard.route` wrap the synchronous hot-path hooks. A synchronous
  call cannot be preempted (it runs inside the connection's receive callback, on the event loop),
  so a hang cannot be cut short; what can be done is to notice it: one call in
  :data:`SAMPLE_EVERY` (the first included) is timed, and one that took longer than the
  controller's ``stall_after`` turns the hook off for good (one log line; the caller's
  ``on_stall`` uninstalls it, so the hot path goes back to its code without a controller). A hook
  that blocks forever blocks its worker: the supervisor's liveness check (``--hung-after``) kills
  and replaces it, as for any hung worker.

Each hook's first failure is logged (with the exception); later ones are counted in
:attr:`Guard.failures` only, so a hook that raises on every event cannot flood the log.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Collection
from typing import Any, Final, TypeVar

from shardrunner.controller.base import Controller
from shardrunner.protocol.envelope import RoutingKey

log = logging.getLogger("shardrunner.controller")

#: One call in this many of a hot-path hook is timed (a power of two: the check is a mask).
SAMPLE_EVERY: Final = 64
_MASK: Final = SAMPLE_EVERY - 1

T = TypeVar("T")
Accept = Callable[[str, str, RoutingKey], bool]
Route = Callable[[str, str, RoutingKey, Collection[str]], str | None]


def _accept_all(platform: str, name: str, key: RoutingKey) -> bool:
    return True


def _no_route(group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
    return None


class Guard:
    """The hooks of one controller, each contained (see the module)."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller
        self.name = type(controller).__qualname__
        #: Hook name -> calls that failed (raised, timed out, answered nonsense, stalled).
        self.failures: dict[str, int] = {}
        #: Hot-path hooks turned off after a stall.
        self.stalled: set[str] = set()
        self._said: set[str] = set()
        #: Hooks past their timeout that have not ended yet (referenced until they do).
        self._abandoned: set[asyncio.Future[Any]] = set()

    def fail(self, hook: str, why: str, exc: BaseException | None = None) -> None:
        """Count a failed call of ``hook``; log the first one (with ``exc``'s traceback)."""
        self.failures[hook] = self.failures.get(hook, 0) + 1
        if hook in self._said:
            return
        self._said.add(hook)
        log.error(
            "controller %s.%s %s; its default applies (logged once: later failures of this hook are "
            "only counted)",
            self.name,
            hook,
            why,
            exc_info=exc,
        )

    async def call(self, hook: str, default: T, *args: Any) -> T:
        """``hook(*args)`` within the controller's timeout; ``default`` if it raised or timed out.
        A hook written as a plain ``def`` is called as it is (it cannot be timed out)."""
        timeout = self.controller.hook_timeout
        try:
            result = getattr(self.controller, hook)(*args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                done, _ = await asyncio.wait({task}, timeout=timeout)
                if not done:
                    # Cancelled, not awaited: a hook that ignores its cancellation cannot hold
                    # the caller (asyncio.wait_for would wait for it to give in).
                    task.cancel()
                    self._abandoned.add(task)
                    task.add_done_callback(self._forget)
                    self.fail(hook, f"took longer than its {timeout:g} s (hook_timeout)")
                    return default
                result = task.result()
        except Exception as exc:
            self.fail(hook, f"raised {type(exc).__name__}: {exc}", exc)
            return default
        return result  # type: ignore[no-any-return]

    def _forget(self, task: asyncio.Future[Any]) -> None:
        self._abandoned.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a late failure of a hook already timed out says nothing

    def _stall(self, hook: str, took: float, on_stall: Callable[[], None]) -> None:
        self.failures[hook] = self.failures.get(hook, 0) + 1
        self.stalled.add(hook)
        log.error(
            "controller %s.%s took %.3f s on one call (more than its stall_after, %g s): turned off "
            "in this process, its default applies from now on (a synchronous hook cannot be "
            "interrupted; see docs/controllers.md)",
            self.name,
            hook,
            took,
            self.controller.stall_after,
        )
        on_stall()

    def accept(self, on_stall: Callable[[], None]) -> Accept:
        """The contained :meth:`Controller.accept` (default: accept)."""
        fn = self.controller.accept
        budget = self.controller.stall_after
        clock = time.perf_counter
        calls = 0
        off = False

        def timed(platform: str, name: str, key: RoutingKey) -> bool:
            nonlocal off, fn
            if off:
                return True
            started = clock()
            try:
                ok = fn(platform, name, key)
            except Exception as exc:
                self.fail("accept", f"raised {type(exc).__name__}: {exc}", exc)
                return True
            took = clock() - started
            if took > budget:
                off, fn = True, _accept_all  # never called again, even through this wrapper
                self._stall("accept", took, on_stall)
                return True
            return ok

        def accept(platform: str, name: str, key: RoutingKey) -> bool:
            nonlocal calls
            calls += 1
            if calls & _MASK != 1:
                try:
                    return fn(platform, name, key)
                except Exception as exc:
                    self.fail("accept", f"raised {type(exc).__name__}: {exc}", exc)
                    return True
            return timed(platform, name, key)

        return accept

    def route(self, on_stall: Callable[[], None]) -> Route:
        """The contained :meth:`Controller.route` (default: None, the rendezvous owner). An answer
        that names no member of the group is a failure too."""
        fn = self.controller.route
        budget = self.controller.stall_after
        clock = time.perf_counter
        calls = 0
        off = False

        def checked(member: object, members: Collection[str]) -> str | None:
            if member is None or (isinstance(member, str) and member in members):
                return member
            self.fail("route", f"answered {member!r:.60}, not a member of the group on this worker")
            return None

        def timed(group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
            nonlocal off, fn
            if off:
                return None
            started = clock()
            try:
                member = fn(group, name, key, members)
            except Exception as exc:
                self.fail("route", f"raised {type(exc).__name__}: {exc}", exc)
                return None
            took = clock() - started
            if took > budget:
                off, fn = True, _no_route  # never called again, even through this wrapper
                self._stall("route", took, on_stall)
                return None
            return checked(member, members)

        def route(group: str, name: str, key: RoutingKey, members: Collection[str]) -> str | None:
            nonlocal calls
            calls += 1
            if calls & _MASK != 1:
                try:
                    return checked(fn(group, name, key, members), members)
                except Exception as exc:
                    self.fail("route", f"raised {type(exc).__name__}: {exc}", exc)
                    return None
            return timed(group, name, key, members)

        return route
