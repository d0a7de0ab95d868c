"""One Twitch chat login as a state machine, without I/O: lines in, lines out and what happened.

The connection (its socket, timers and budgets) feeds every line the server sends to
:meth:`IrcSession.feed` and writes what :meth:`IrcSession.hello` and the answers return. The
session knows the protocol of ../shared/TWITCH.md:

- the login: ``CAP REQ`` for membership, tags and commands, then ``PASS`` (``oauth:<token>``; any
  for an anonymous ``justinfan`` login) and ``NICK``; logged in at 376, or failed for good at
  ``NOTICE * :Login authentication failed`` (or "Improperly formatted auth");
- PING is answered at once, and a PONG ends the connection's own liveness check;
- JOIN is confirmed by the channel's ROOMSTATE (after JOIN, 353, 366, USERSTATE); a channel is
  failed by ``msg_channel_suspended`` (or a ban's PART); our own JOIN and PART lines change the
  membership;
- RECONNECT (with or without a channel) is reported, never acted on here: the connection makes the
  replacement before it breaks this one;
- every other line is a chat event, handed on with its parsed message.

Nothing here blocks or sleeps, so every rule is tested by feeding lines.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

from shardrunner.protocol import irc
from shardrunner.protocol import twitch as tw

#: The commands that are chat events on the bus (the rest is the session's own business).
EVENTS = frozenset(
    {"PRIVMSG", "USERNOTICE", "CLEARCHAT", "CLEARMSG", "ROOMSTATE", "USERSTATE", "NOTICE", "JOIN", "PART",
     "WHISPER", "HOSTTARGET", "GLOBALUSERSTATE"}
)  # fmt: skip


#: NOTICE msg-ids that mean a channel cannot be read (it is marked failed, retried slowly).
CHANNEL_FAILURES = frozenset({"msg_channel_suspended", "tos_ban"})


class LoginFailed(Exception):
    """Twitch refused the login; the message says what to check."""


class State(enum.Enum):
    NEW = "new"
    LOGGING_IN = "logging_in"
    READY = "ready"
    FAILED = "failed"


@dataclass(slots=True)
class Outcome:
    """What one line did: lines to write back, events to hand on, changes to act on."""

    send: list[bytes] = field(default_factory=list)
    events: list[irc.Message] = field(default_factory=list)
    #: Logged in with this line (376).
    ready: bool = False
    #: Channels whose join is confirmed (ROOMSTATE after our JOIN), or that failed (with the reason).
    joined: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    parted: list[str] = field(default_factory=list)
    #: RECONNECT: None for the whole connection; a channel name when only that channel moves.
    reconnect: bool = False
    reconnect_channel: str | None = None
    pong: bool = False


class IrcSession:
    """The protocol of one login (see the module)."""

    def __init__(self, login: str, token: str | None) -> None:
        self.login = login.lower()
        self.anonymous = self.login.startswith(tw.ANONYMOUS_PREFIX)
        if token is None and not self.anonymous:
            raise ValueError(f"{self.login}: a login that is not anonymous needs a token")
        self._token = token
        self.state = State.NEW
        #: Channels joined (confirmed), and those asked for and not confirmed yet.
        self.channels: set[str] = set()
        self.joining: set[str] = set()

    def __repr__(self) -> str:  # never the token
        return f"IrcSession({self.login!r}, {self.state.value}, {len(self.channels)} channels)"

    # -- what to write -----------------------------------------------------------------------------
    def hello(self, caps: Sequence[str] = tw.CAPS) -> list[bytes]:
        """The lines that open the login: capabilities, then PASS before NICK."""
        self.state = State.LOGGING_IN
        token = self._token or "SCHMOOPIIE"  # what anonymous logins usually send (tmi.js)
        if not token.startswith("oauth:") and not self.anonymous:
            token = "oauth:" + token
        return [
            irc.format("CAP", ["REQ", " ".join(caps)], trailing=True),
            irc.format("PASS", [token]),
            irc.format("NICK", [self.login]),
        ]

    def join(self, channels: list[str]) -> bytes:
        """One JOIN line for these channels (the caller took them from the JOIN budget)."""
        self.joining.update(channels)
        return irc.format("JOIN", [",".join("#" + c for c in channels)])

    def part(self, channels: list[str]) -> bytes:
        for c in channels:
            self.joining.discard(c)
        return irc.format("PART", [",".join("#" + c for c in channels)])

    # -- what was read ---------------------------------------------------------------------------
    def feed(self, message: irc.Message) -> Outcome:
        """React to one line from the server."""
        out = Outcome()
        command = message.command
        if command == "PING":
            out.send.append(irc.format("PONG", [message.trailing or tw.SERVER], trailing=True))
        elif command == "PONG":
            out.pong = True
        elif command == "376" and self.state is State.LOGGING_IN:
            self.state = State.READY
            out.ready = True
        elif command == "NOTICE" and message.params[:1] == ["*"]:
            text = message.trailing.lower()
            # Only the login can fail: after it such a NOTICE is one more line (an exception then
            # would cost the rest of what was read with it).
            if self.state is not State.READY and (
                tw.LOGIN_FAILED.lower() in text or tw.IMPROPER_AUTH.lower() in text
            ):
                self.state = State.FAILED
                raise LoginFailed(
                    f"Twitch refused the login of {self.login} ({message.trailing}): check its OAuth token "
                    "(it must be a user token with the chat:read and chat:edit scopes)"
                )
            out.events.append(message)
        elif command == "RECONNECT":
            out.reconnect = True
            channel = message.channel
            out.reconnect_channel = channel[1:] if channel else None
        else:
            self._chat(message, out)
        return out

    def _chat(self, message: irc.Message, out: Outcome) -> None:
        command = message.command
        channel = (message.channel or "")[1:]
        if command == "ROOMSTATE" and channel in self.joining:
            self.joining.discard(channel)
            self.channels.add(channel)
            out.joined.append(channel)
        elif command == "NOTICE" and message.tags.get("msg-id") in CHANNEL_FAILURES:
            if channel in self.joining or channel in self.channels:
                self.joining.discard(channel)
                self.channels.discard(channel)
                out.failed.append((channel, message.tags.get("msg-id", "")))
        elif command == "PART" and message.nick == self.login and channel:
            self.channels.discard(channel)
            self.joining.discard(channel)
            out.parted.append(channel)
        if command in EVENTS:
            out.events.append(message)
