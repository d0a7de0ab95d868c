"""What the simulator saw, for ``GET /_sim/stats``: bounded lists of records."""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from shardrunner.sim.discord.gateway import Connection

log = logging.getLogger("shardrunner.sim")

_RECORD_LIMIT: Final = 100_000


class Recorder:
    """Identifies, resumes, violations, closes, commands and faults, each list bounded."""

    def __init__(self) -> None:
        names = ("identifies", "resumes", "violations", "closes", "commands", "faults")
        self.lists: dict[str, deque[dict[str, Any]]] = {n: deque(maxlen=_RECORD_LIMIT) for n in names}

    def add(self, into: str, /, **fields: Any) -> None:
        fields["time"] = time.time()
        self.lists[into].append(fields)

    def violation(self, kind: str, conn: Connection | None, detail: str) -> None:
        log.info("violation %s: %s", kind, detail)
        self.add("violations", kind=kind, detail=detail, **(conn.describe() if conn else {}))
