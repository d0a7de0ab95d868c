"""What the worker runs, for any platform: one gateway connection and its platform-neutral parts.

A platform's package (``shardrunner.gateway.discord``, Twitch chat later) implements
:class:`GatewayConnection`; the worker only ever sees this protocol, the neutral
:class:`ConnState`, :class:`ConnCounters` and errors, and the :data:`Sink` it hands events to.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from shardrunner.protocol.envelope import Event, SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice

#: Receives every event of a connection, synchronously and in order.
Sink = Callable[[Event], None]
#: Receives a connection's lifecycle notices (ready, resumed, disconnected, fatal, Twitch's
#: channels), each once, synchronously, in the order they happened (``protocol/lifecycle.py``).
Notify = Callable[[Notice], None]


def no_notice(notice: Notice) -> None:
    """The ``notify`` of a connection nobody listens to (the default; the worker sets its own)."""


#: A controller's say in how a connection starts: called with the connection's key and what the
#: platform is about to send (no secret in it: Discord's IDENTIFY without the token, Twitch's nick
#: and capabilities), it returns what to send instead. Installed only when a controller changes it;
#: it never raises and never hangs (the worker contains it).
StartHook = Callable[[ConnKey, dict[str, Any]], Awaitable[dict[str, Any]]]


class ConnState(enum.Enum):
    IDLE = "idle"
    #: In the identify queue's line, not connected yet (it connects once its turn is near).
    QUEUED = "queued"
    CONNECTING = "connecting"
    IDENTIFYING = "identifying"
    RESUMING = "resuming"
    READY = "ready"
    RECONNECTING = "reconnecting"
    STOPPED = "stopped"
    FATAL = "fatal"


class ConnFatalError(Exception):
    """The platform ended the connection in a way reconnecting cannot help; the message says what to do.

    The worker's connection table says it (``shardrunner.fatal``, with ``code`` and ``advice``):
    a connection does not notify it itself."""

    def __init__(self, conn: ConnKey, code: int, advice: str) -> None:
        self.conn = conn
        self.code = code
        self.advice = advice
        super().__init__(f"{conn}: {advice}")


class CommandRejected(ValueError):
    """The command is not valid for the platform (too large, not allowed); it was not sent."""


class NotReady(RuntimeError):
    """The command could not be sent within its timeout (not connected, or no free command slot)."""


@dataclass(slots=True)
class ConnCounters:
    """What a connection has done; the same fields for every platform."""

    events_in: int = 0
    bytes_in: int = 0
    reconnects: int = 0
    resumes: int = 0
    identifies: int = 0
    duplicates: int = 0
    gaps: int = 0
    sink_errors: int = 0
    #: Events whose routing key could not be read (delivered without one).
    key_errors: int = 0
    #: What the platform sent that could not be read: payloads or lines dropped (undecodable, of an
    #: unknown shape), and messages that ended the connection (a corrupted stream, one too large).
    decode_errors: int = 0
    #: Seconds between the last heartbeat and its answer.
    heartbeat_latency: float | None = None
    last_resume_at: float | None = None
    #: The routing keys the connection serves (Discord: its guild ids).
    keys: set[int | str] = field(default_factory=set)
    #: Bumped on every change of ``keys``, so a reporter can send the set only when it changed.
    keys_version: int = 0
    #: Routing keys the session's start announced that have not been delivered yet (Discord: the
    #: guilds of READY whose GUILD_CREATE has not come); ``pending`` holds them. Kept here, not in
    #: the connection, so a connection rebuilt after a crash (it resumes) keeps counting them down.
    keys_pending: int = 0
    pending: set[int | str] = field(default_factory=set)

    @property
    def key_count(self) -> int:
        return len(self.keys)

    def set_keys(self, keys: Iterable[int | str]) -> None:
        self.keys = set(keys)
        self.keys_version += 1

    def add_key(self, key: int | str) -> None:
        if key not in self.keys:
            self.keys.add(key)
            self.keys_version += 1

    def remove_key(self, key: int | str) -> None:
        if key in self.keys:
            self.keys.discard(key)
            self.keys_version += 1

    def expect_keys(self, keys: Iterable[int | str]) -> None:
        """A session started announcing these keys; each counts as pending until it arrives."""
        self.pending = set(keys)
        self.keys_pending = len(self.pending)

    def key_arrived(self, key: int | str) -> None:
        pending = self.pending
        if key in pending:
            pending.discard(key)
            self.keys_pending = len(pending)

    def decode_error(self, n: int = 1) -> bool:
        """Count ``n`` inputs that could not be read; True when the count passes a power of two:
        the caller logs then (the 1st, 2nd, 4th...), so a flood of them is a few lines of log."""
        before = self.decode_errors
        self.decode_errors = before + n
        return before.bit_length() != self.decode_errors.bit_length()

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_in": self.events_in,
            "bytes_in": self.bytes_in,
            "reconnects": self.reconnects,
            "resumes": self.resumes,
            "identifies": self.identifies,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "sink_errors": self.sink_errors,
            "key_errors": self.key_errors,
            "decode_errors": self.decode_errors,
            "heartbeat_latency": self.heartbeat_latency,
            "last_resume_at": self.last_resume_at,
            "keys": self.key_count,
            "keys_pending": self.keys_pending,
        }


class GatewayConnection(Protocol):
    """One long-lived connection to a platform's gateway, kept alive until closed."""

    conn: ConnKey
    state: ConnState
    counters: ConnCounters
    session_id: str | None
    seq: int
    resume_url: str | None
    #: The lease epoch of the connection's holder (the worker sets it after building the
    #: connection; 0 on one host): stamped on every event it makes, so consumers can drop the
    #: events of a superseded holder (see ``protocol.envelope.Event.epoch``).
    epoch: int
    #: Where the connection reports its lifecycle (:data:`Notify`): set by the worker's connection
    #: table after building it; :func:`no_notice` until then.
    notify: Notify

    async def run(self) -> None:
        """Stay connected until :meth:`close`; raise :class:`ConnFatalError` when that cannot go on."""

    async def close(self, *, handoff: bool = False, timeout: float = 10.0) -> SessionSnapshot | None:
        """Stop; with ``handoff`` close resumably and return the session for another process."""

    async def send_command(self, body: Any, *, timeout: float = 30.0) -> Any:
        """Send the platform command ``body``; raise :class:`CommandRejected` or :class:`NotReady`.

        Returns what the platform answered, for the caller (Twitch: the sent message's id), or None."""

    def snapshot(self) -> SessionSnapshot | None:
        """The resumable session as it stands (None if there is none)."""
