"""The part config of Twitch: what every worker running Twitch connections is given.

The supervisor's :class:`~.plan.TwitchPlan` writes it; the worker's
:class:`~.platform.TwitchPlatform` reads it. It holds the whole connection table (a connection's
role, login and channels, by its index in the set), the accounts' tokens (secret: only in these
bytes, never in a repr), the servers, and the limits.
"""

from __future__ import annotations

import msgspec

from shardrunner.protocol.twitch import TwitchLimits

READ = "read"
SEND = "send"


class ConnSpec(msgspec.Struct, omit_defaults=True):
    """One connection of the set: a reader of ``channels``, or the sending connection of ``login``."""

    role: str
    login: str
    channels: list[str] = []
    #: A backup reader (the second reader of its channels).
    backup: bool = False
    #: Started idle, for channels added at run time (becomes False once it has some).
    spare: bool = False


class PartConfig(msgspec.Struct):
    conns: list[ConnSpec]
    tokens: dict[str, str]
    url: str
    backup_url: str | None = None
    verified: list[str] = []
    #: login -> channels it moderates or owns.
    moderates: dict[str, list[str]] = {}
    limits: TwitchLimits = TwitchLimits()
    send_queue: int = 1000
    bypass_duplicates: bool = False
    #: Bumped on every change of the table (channels added or removed).
    version: int = 0

    def __repr__(self) -> str:  # never the tokens
        return f"PartConfig({len(self.conns)} connections, version {self.version})"

    def encode(self) -> bytes:
        return _encoder.encode(self)

    @classmethod
    def decode(cls, data: bytes) -> PartConfig:
        return _decoder.decode(data)

    def limits_of(self, login: str) -> TwitchLimits:
        """The limits of ``login``: the verified ones if it is a verified bot (in the configured
        windows)."""
        if login in self.verified:
            return TwitchLimits.verified(
                join_window=self.limits.join_window, message_window=self.limits.privmsg_window
            )
        return self.limits


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PartConfig)

#: Budget names: the JOINs and logins of normal and of verified accounts (each keyed by login).
JOIN = "twitch.join"
JOIN_VERIFIED = "twitch.join.verified"
LOGIN = "twitch.login"
LOGIN_VERIFIED = "twitch.login.verified"


def budget_names(login: str, verified: list[str]) -> tuple[str, str]:
    """(join budget, login budget) of ``login``."""
    if login in verified:
        return JOIN_VERIFIED, LOGIN_VERIFIED
    return JOIN, LOGIN
