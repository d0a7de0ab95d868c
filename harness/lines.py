"""What a bot program prints for its harness: one JSON line per record, flushed at once.

Imported by the bot programs themselves (tests/cluster/bot_proc.py, benchmarks/botproc.py), so it
imports nothing beyond the standard library.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shardrunner.client import Gap


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def gap_record(g: Gap) -> dict[str, Any]:
    """A gap report as ``BotProcess.gaps`` holds it."""
    return {"conn": str(g.conn), "shard": g.shard, "session": g.session, "count": g.count, "ranges": g.ranges}
