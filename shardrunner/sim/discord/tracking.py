"""Dispatch identity: which world dispatch each seq of each session carries (``GET /_sim/dispatches``).

Every dispatch the world makes (the generator's events, a guild joining or leaving) gets one id from
the simulator's counter, the same for every session it goes to, whatever its shard layout. With
``track_dispatches`` on, each live session has a :class:`Track`: the id of each of its seqs, 0 for
what only that session gets (READY, its own GUILD_CREATEs, RESUMED, GUILD_MEMBERS_CHUNK). A test
counts exactly-once delivery across sessions (and across shard layouts while a bot reshards) by
those ids.

Only the tracked path records: a world dispatch to a tracked session calls :meth:`Track.record`, and
the seqs in between (session-only dispatches) are filled with 0 when the next one is recorded or
the record is read. With tracking off, nothing here runs.
"""

from __future__ import annotations

import array
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shardrunner.sim.discord.session import Session


class Track:
    """The dispatch ids of one session's seqs from ``first_seq`` on."""

    __slots__ = ("end", "first_seq", "ids", "session")

    def __init__(self, session: Session, first_seq: int) -> None:
        self.session = session
        self.first_seq = first_seq
        self.ids: array.array[int] = array.array("q")
        #: The last seq this record covers, once it stopped (the session ended, or tracking went off).
        self.end: int | None = None

    def record(self, seq: int, ident: int) -> None:
        """Dispatch ``seq`` of the session is world dispatch ``ident``."""
        ids = self.ids
        gap = seq - self.first_seq - len(ids)
        if gap > 0:
            ids.frombytes(bytes(ids.itemsize * gap))
        ids.append(ident)

    def stop(self) -> None:
        """Stop recording here: what the session logged so far is covered, nothing later."""
        if self.end is None:
            self.end = self.session.last_seq
            self.session.track = None

    def last(self) -> int:
        """The last seq this record covers: up to now for a live session."""
        if self.end is not None:
            return self.end
        return self.session.last_seq

    def snapshot(self) -> dict[str, Any]:
        s = self.session
        ids = self.ids.tolist()
        missing = self.last() - self.first_seq + 1 - len(ids)
        if missing > 0:
            ids.extend([0] * missing)
        return {
            "session_id": s.id,
            "shard": [s.shard_id, s.num_shards],
            "first_seq": self.first_seq,
            "ids": ids,
        }


class DispatchLog:
    """The world's dispatch counter and every session's :class:`Track`."""

    def __init__(self) -> None:
        #: World dispatches made so far; the newest one's id (ids start at 1; 0 is "session only").
        self.generated = 0
        self.tracks: list[Track] = []

    def next_id(self) -> int:
        self.generated += 1
        return self.generated

    def start(self, session: Session, first_seq: int) -> None:
        """Track ``session`` from ``first_seq`` on (a no-op for one already tracked or scripted)."""
        if session.track is None and session.script is None and session.ended is None:
            track = session.track = Track(session, first_seq)
            self.tracks.append(track)

    def snapshot(self) -> dict[str, Any]:
        return {"generated": self.generated, "sessions": [t.snapshot() for t in self.tracks]}
