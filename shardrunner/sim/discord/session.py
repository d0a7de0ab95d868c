"""A gateway session as the simulator keeps it: its dispatch log, and the connection it is attached to.

A session lives from an accepted IDENTIFY until it is invalidated (the client closes with 1000/1001,
the gateway sends op 9 false or closes with a new-session or fatal code, or nobody resumes it within
the resume window). While no connection is attached, dispatches keep being logged, exactly as on
Discord: a client that resumes receives what happened while it was away.

The log holds the encoded payloads of the last ``buffer`` dispatches (the replay buffer). In replay
mode, dispatches after the GUILD_CREATEs come from a :class:`PreparedScript` and are not stored.

RESUMED is a dispatch of the session like any other, with a sequence number of its own (as on
Discord): an accepted RESUME logs it after what is to be replayed (:meth:`Session.log_resumed`), so
the connection streams the replay, RESUMED, then what follows, and a later RESUME from before it
replays it in its place (no hole in the seqs). A scripted session's RESUMED takes the script slot of
its seq (the scripted dispatch there is never produced), so every later scripted dispatch keeps the
seq its prepared frame carries.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from shardrunner.sim.discord.gateway import Connection
    from shardrunner.sim.discord.replay import PreparedScript
    from shardrunner.sim.discord.tracking import Track


#: RESUMED's ``d``: Discord sends only its trace.
RESUMED_D: Final = b'{"_trace":["[\\"shardrunner-sim\\"]"]}'


def resumed_payload(seq: int) -> bytes:
    """The encoded RESUMED dispatch with sequence number ``seq``."""
    return b'{"t":"RESUMED","s":%d,"op":0,"d":%b}' % (seq, RESUMED_D)


class Session:
    """One resumable gateway session."""

    __slots__ = (
        "_first_seq",
        "_log",
        "buffer",
        "conn",
        "created",
        "detached_at",
        "ended",
        "ended_at",
        "id",
        "intents",
        "large_threshold",
        "last_sent_seq",
        "num_shards",
        "resumed",
        "script",
        "script_credit",
        "script_produced",
        "shard_id",
        "track",
        "user_id",
    )

    def __init__(
        self, session_id: str, shard_id: int, num_shards: int, user_id: int, intents: int, buffer: int
    ) -> None:
        self.id = session_id
        self.shard_id = shard_id
        self.num_shards = num_shards
        self.user_id = user_id
        self.intents = intents
        self.large_threshold = 50
        self.buffer = buffer
        self.created = time.time()
        self._log: list[bytes] = []
        self._first_seq = 1
        self.conn: Connection | None = None
        self.detached_at: float | None = None
        self.ended: str | None = None
        self.ended_at = 0.0
        self.last_sent_seq = 0
        self.script: PreparedScript | None = None
        self.script_produced = 0
        self.script_credit = 0.0
        #: Seqs of the RESUMEDs that took script slots, ascending (scripted sessions only: a live
        #: session logs RESUMED like any dispatch).
        self.resumed: list[int] = []
        #: The record of which world dispatch each seq is, while ``track_dispatches`` is on.
        self.track: Track | None = None

    @property
    def last_seq(self) -> int:
        """The newest sequence number given to a dispatch of this session."""
        if self.script is not None and self.script_produced:
            return self.script.first_seq + self.script_produced - 1
        return self._first_seq + len(self._log) - 1

    @property
    def oldest_seq(self) -> int:
        """The oldest sequence number that can still be replayed.

        A scripted session keeps its whole script, so its buffer counts back from what was sent: a
        connection that is behind its (instant) script is not a slow consumer.
        """
        if self.script is not None:
            return max(1, self.last_sent_seq - self.buffer + 1)
        return max(self._first_seq, self.last_seq - self.buffer + 1)

    @property
    def scripted(self) -> bool:
        return self.script is not None

    def append(self, name: bytes, d: bytes) -> int:
        """Log one live dispatch and return its sequence number."""
        seq = self._first_seq + len(self._log)
        self._log.append(b'{"t":"%b","s":%d,"op":0,"d":%b}' % (name, seq, d))
        if len(self._log) >= 2 * self.buffer + 64:
            drop = len(self._log) - self.buffer
            del self._log[:drop]
            self._first_seq += drop
        return seq

    def log_resumed(self) -> int:
        """Log RESUMED with the next sequence number (``last_seq + 1``) and return it."""
        script = self.script
        if script is None:
            return self.append(b"RESUMED", RESUMED_D)
        seq = self.last_seq + 1
        # RESUMED takes the slot of its seq in the script (even past the script's end): the scripted
        # dispatch of that slot is never produced, and every later one keeps its prepared seq.
        self.script_produced = seq - script.first_seq + 1
        self.resumed.append(seq)
        return seq

    def next_resumed(self, seq: int) -> int | None:
        """The seq of the first RESUMED at or after ``seq`` in the script's range, if any."""
        resumed = self.resumed
        if not resumed:
            return None
        i = bisect_left(resumed, seq)
        return resumed[i] if i < len(resumed) else None

    def payload(self, seq: int) -> bytes:
        """The encoded payload of dispatch ``seq`` (which must be between oldest and last)."""
        script = self.script
        if script is not None and seq >= script.first_seq:
            if self.resumed and self.next_resumed(seq) == seq:
                return resumed_payload(seq)
            return script.payload(seq - script.first_seq)
        return self._log[seq - self._first_seq]

    def end(self, reason: str) -> None:
        if self.track is not None:
            self.track.stop()  # before the log goes: the record covers every seq the session had
        self.ended = reason
        self.ended_at = time.monotonic()
        self._log = []
        self.conn = None
