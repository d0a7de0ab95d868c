"""The identify queue's interface, and the limits it enforces.

A connection that must identify first awaits :meth:`IdentifyQueue.near` (it stands in line, and
returns once its turn is within the limit's ``lead``), connects, then awaits
:meth:`IdentifyQueue.acquire` before it identifies, calls
:meth:`IdentifyQueue.sent` in the same step as the IDENTIFY goes out (the limit's window counts
from there), and :meth:`IdentifyQueue.release` when the outcome is known (READY, an invalid session,
or a lost connection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shardrunner.protocol.keys import ConnKey


@dataclass(frozen=True, slots=True)
class StartLimit:
    """One platform limit on starting connections: ``buckets`` independent buckets, each allowing one
    start per ``window`` seconds (Discord: ``max_concurrency`` buckets of 5 s, for the whole token).

    ``lead``: how many seconds before its grant is due a connection in line is told its turn is
    near (:meth:`IdentifyQueue.near`), to connect meanwhile: a couple of handshake times."""

    name: str
    buckets: int
    window: float
    lead: float = 0.0


#: Which bucket of which limit a connection's start counts against: ``(limit name, bucket index)``.
BucketOf = Callable[[ConnKey], tuple[str, int]]


class IdentifyQueue(Protocol):
    """Grants start permission, one connection at a time per bucket."""

    async def near(self, conn: ConnKey) -> None:
        """Stand in line for ``conn`` (not connected yet) and wait until its turn is near: connect
        then, and :meth:`acquire` once connected (or :meth:`release` if the connect failed)."""

    async def acquire(self, conn: ConnKey) -> None:
        """Wait until ``conn`` may identify now (in line already if it called :meth:`near`)."""

    def sent(self, conn: ConnKey) -> None:
        """The identify of ``conn`` went out now: its bucket's window counts from here."""

    def release(self, conn: ConnKey, *, ready: bool) -> None:
        """The identify of ``conn`` ended: ready (``ready=True``), refused, or a lost connection; or
        ``conn`` leaves the line it stood in without a grant."""
