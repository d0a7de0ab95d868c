"""One fan-out of lifecycle notices to listeners (the worker's and the supervisor's).

``listeners`` is a plain list of callables, each called with every
:class:`~shardrunner.protocol.lifecycle.Notice` in order, synchronously: a listener that needs time
schedules it. A listener that raises is logged once (its first failure, with the traceback) and
keeps being called; the others are not affected.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from shardrunner.protocol.lifecycle import Notice

log = logging.getLogger("shardrunner.lifecycle")

Listener = Callable[[Notice], None]


class Fanout:
    """Every notice to every listener; an error in one is contained and logged once per listener."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.listeners: list[Listener] = []
        self._logged: list[Listener] = []
        #: Listener failures so far (every one, logged or not).
        self.errors = 0

    def emit(self, notice: Notice) -> None:
        for listener in list(self.listeners):
            try:
                listener(notice)
            except Exception:
                self.errors += 1
                if not any(known is listener for known in self._logged):
                    self._logged.append(listener)
                    log.exception(
                        "%s: the lifecycle listener %r raised on %s (logged once; it stays registered)",
                        self.name,
                        listener,
                        notice.kind,
                    )
