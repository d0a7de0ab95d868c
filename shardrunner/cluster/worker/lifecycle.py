"""The worker's lifecycle events on its bus: each connection's notices as events, numbered apart.

A notice of a connection (``protocol/lifecycle.py``) becomes an
:class:`~shardrunner.protocol.envelope.Event` named for its kind, with the JSON body, no routing key
(so its member is the one of the connection's key-less events), and the lease epoch of the
connection's holder. Its session is not the platform's: every event of this worker process is in
one pseudo session, ``shardrunner:<random hex>`` made at start, numbered per connection from 1. So
the client's dedupe by ``(conn, session, seq)`` works on them, and the router's holds of the
platform session, which give the connection's resume point (``ConnTable.low_water`` takes only
the connection's own session id), never see them.

A worker that dies loses the lifecycle events it held unacknowledged: the platform replays its own
events to the next worker, nobody replays these (the next worker says ``resumed`` or ``ready`` for
each connection it takes over, in its own pseudo session).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from shardrunner.protocol import lifecycle
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice


class LifecycleEvents:
    """Makes the bus events of one worker process's notices."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.session = lifecycle.SESSION_PREFIX + secrets.token_hex(8)
        self._wall = wall
        self._seq: dict[ConnKey, int] = {}

    def event(self, notice: Notice, epoch: int = 0) -> Event:
        """The next event of ``notice.conn`` (which must be set)."""
        conn = notice.conn
        if conn is None:
            raise ValueError(f"{notice.kind}: only a connection's notice goes on the bus")
        seq = self._seq[conn] = self._seq.get(conn, 0) + 1
        data = lifecycle.encode(lifecycle.body(notice, self._wall()))
        return Event(conn, self.session, seq, notice.kind, None, data, epoch)
