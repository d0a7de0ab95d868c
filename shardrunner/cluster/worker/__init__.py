"""A worker process: runs the connections the supervisor assigns it, for any platform, on uvloop.

| module | holds |
|---|---|
| :mod:`.process` | the command line (``python -m shardrunner.cluster.worker``), the supervisor link |
| :mod:`.core` | :class:`Worker`: what it does with each message; handoffs as tasks; reports |
| :mod:`.conns` | the connections by :class:`~shardrunner.protocol.keys.ConnKey`: crash isolation, commands |

Platforms are loaded by name (:func:`shardrunner.gateway.platform.load_platform`) and run through
the :class:`~shardrunner.gateway.connection.GatewayConnection` protocol: nothing here knows Discord.
"""

from __future__ import annotations

from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.cluster.worker.core import Worker
from shardrunner.cluster.worker.process import main

__all__ = ["BOOT_FAILED", "Worker", "main"]
