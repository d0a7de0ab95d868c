"""Start-up progress: ``shards ready R/N, K to identify, ETA T s``.

Three ways to show it, chosen once at start:

- ``live``: one line redrawn in place (``\\r``), when stderr is a terminal and the supervisor runs in
  the terminal's foreground;
- ``lines``: one full line per change, when stderr is a terminal but the supervisor runs in the
  background (``shardrunner start --sim & python examples/bot.py``): the bot writes to the same
  terminal, and a line redrawn in place would run into its output;
- ``log``: log lines (at most one every 2 s, and the last), when stderr is not a terminal.

``progress = "always"`` forces ``live``; ``never`` gives ``log`` even on a terminal.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor.book import SessionBook
    from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("shardrunner.supervisor")

Mode = Literal["live", "lines", "log"]


def _foreground(stream: TextIO) -> bool:
    """Whether this process runs in the foreground of the terminal ``stream`` is on."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.tcgetpgrp(stream.fileno()) == os.getpgrp()
    return True


def choose_mode(setting: str, stream: TextIO) -> Mode:
    if setting == "always":
        return "live"
    if setting == "never" or not stream.isatty():
        return "log"
    return "live" if _foreground(stream) else "lines"


class Progress:
    """The start-up progress of one cluster."""

    def __init__(self, setting: str, stream: TextIO | None = None, *, mode: Mode | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.mode: Mode = mode or choose_mode(setting, self.stream)
        self.last: tuple[int, int] | None = None
        self.done = False
        self.last_log = -math.inf

    def update_from(
        self, book: SessionBook, conns: list[ConnKey], buckets: int, window: float, now: float
    ) -> None:
        """Count from the book: ready connections, and those that still must identify (no session,
        not ready), which take ``ceil(n / buckets)`` windows."""
        reports = book.reports
        ready = sum(1 for c in conns if (r := reports.get(c)) is not None and r.state == "ready")
        to_identify = sum(
            1
            for c in conns
            if c not in book.snapshots and ((r := reports.get(c)) is None or r.state != "ready")
        )
        eta = math.ceil(to_identify / max(1, buckets)) * window
        self.update(ready=ready, total=len(conns), to_identify=to_identify, eta=eta, now=now)

    def update(self, *, ready: int, total: int, to_identify: int, eta: float, now: float) -> None:
        if self.done or not total:
            return
        line = f"shards ready {ready}/{total}" + (
            f", {to_identify} to identify, ETA {eta:.0f} s" if ready < total else ""
        )
        changed = (ready, to_identify) != self.last
        if self.mode == "live":
            self.stream.write(f"\r\x1b[2K{line}")
            self.stream.flush()
        elif self.mode == "lines":
            if changed:
                self.stream.write(line + "\n")
                self.stream.flush()
        elif changed and (now - self.last_log > 2 or ready == total):
            log.info("%s", line)
            self.last_log = now
        self.last = (ready, to_identify)
        if ready == total:
            self.finish()
            log.info("all %d shards ready", total)

    def finish(self) -> None:
        if self.mode == "live" and not self.done:
            self.stream.write("\n")
            self.stream.flush()
        self.done = True
