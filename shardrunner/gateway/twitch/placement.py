"""Where each Twitch channel is read: channels on reading connections, connections on readers.

A *reader* is who a connection logs in as: one of the bot's accounts, or an anonymous
``justinfan`` login (read-only). Twitch lets an account be in at most ``channel_limit`` (100)
channels at once, not counting the channels it moderates; anonymous readers have no such limit.
A connection reads at most ``per_conn`` channels, and at most ``max_rate`` messages per second
(estimated per channel), so that a busy channel gets fewer neighbours and one busier than that a
connection of its own.

Channels go, in order of preference, to an account that moderates them (free), to an account with
room left, then to anonymous readers if they are allowed; the channels an account reads are packed
onto its connections, busiest first. With ``backup``, each channel is read a second time by a
connection of another reader (another account with room, or an anonymous one): the backups come
after every primary connection, so that consecutive ranges of connections on workers put a
channel's two readers on different workers whenever there are two or more.

Pure functions: the plan is computed again from the same inputs to the same result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

#: The login of anonymous readers (Twitch accepts ``justinfan`` followed by digits).
ANONYMOUS: Final = "justinfan"
CHANNEL_LIMIT: Final = 100
_NAME_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


class PlacementError(ValueError):
    """The channels cannot be placed as configured; the message is one sentence for the user."""


@dataclass(frozen=True, slots=True)
class Account:
    """One of the bot's Twitch accounts, as placement sees it (the token is not needed here)."""

    login: str
    #: Channels where the account is moderator or broadcaster (they do not count toward the limit).
    moderates: frozenset[str] = frozenset()
    #: Whether this account reads channels (an account may only send).
    reads: bool = True


@dataclass(frozen=True, slots=True)
class ReadConn:
    """One reading connection: who it logs in as and the channels it joins."""

    index: int
    reader: str
    channels: tuple[str, ...]
    #: Whether it carries backups (the second reader of its channels).
    backup: bool = False


@dataclass(slots=True)
class Placement:
    conns: list[ReadConn]
    #: Channel -> indexes of the connections reading it (primary first).
    readers: dict[str, list[int]] = field(default_factory=dict)

    def channels_of(self, reader: str) -> int:
        return sum(len(c.channels) for c in self.conns if c.reader == reader)


def normalize(channel: str) -> str:
    """``#Name`` -> ``name`` (Twitch channel names are lower-case logins)."""
    name = channel.strip().lstrip("#").lower()
    if not name or not all(ch in _NAME_CHARS for ch in name) or len(name) > 25:
        raise PlacementError(f"{channel!r} is not a Twitch channel name (letters, digits and _, at most 25)")
    return name


def place(
    channels: Iterable[str],
    accounts: list[Account],
    *,
    anonymous: bool,
    per_conn: int = 50,
    max_rate: float = 200.0,
    rates: Mapping[str, float] | None = None,
    backup: bool = False,
    channel_limit: int = CHANNEL_LIMIT,
) -> Placement:
    """Place every channel (see the module); PlacementError when the readers cannot hold them."""
    if per_conn < 1:
        raise PlacementError(f"channels per connection must be at least 1, not {per_conn}")
    names = sorted({normalize(c) for c in channels})
    rates = rates or {}
    readers = [a for a in accounts if a.reads]
    primary = _assign(names, readers, anonymous, channel_limit, exclude={})
    conns = _pack(primary, per_conn, max_rate, rates, start=0, backup=False)
    if backup:
        second = _assign(names, readers, anonymous, channel_limit, exclude=primary, used=primary)
        conns += _pack(second, per_conn, max_rate, rates, start=len(conns), backup=True)
    placement = Placement(conns)
    for conn in conns:
        for name in conn.channels:
            placement.readers.setdefault(name, []).append(conn.index)
    return placement


def _assign(
    names: list[str],
    readers: list[Account],
    anonymous: bool,
    limit: int,
    *,
    exclude: Mapping[str, list[str]],
    used: Mapping[str, list[str]] | None = None,
) -> dict[str, list[str]]:
    """Reader -> its channels. ``exclude``: reader -> channels it reads already (a backup must be
    another reader); ``used`` counts toward each account's limit."""
    room = {a.login: limit - _limited(a, (used or {}).get(a.login, ())) for a in readers}
    out: dict[str, list[str]] = {}
    unplaced: list[str] = []
    for name in names:
        taken = {r for r, chans in exclude.items() if name in chans and r != ANONYMOUS}
        mod = next((a.login for a in readers if name in a.moderates and a.login not in taken), None)
        if mod is not None:
            out.setdefault(mod, []).append(name)
            continue
        free = [a.login for a in readers if room[a.login] > 0 and a.login not in taken]
        if free:
            best = max(free, key=lambda login: room[login])  # spread over the accounts
            room[best] -= 1
            out.setdefault(best, []).append(name)
        elif anonymous:  # every anonymous connection is a login of its own: a backup too
            out.setdefault(ANONYMOUS, []).append(name)
        else:
            unplaced.append(name)
    if unplaced:
        what = "the backups of " if exclude else ""
        raise PlacementError(
            f"the configured accounts cannot hold {what}{len(unplaced)} of the {len(names)} channels "
            f"(each account may be in {limit} channels at once, channels it moderates aside): add "
            "accounts, allow anonymous readers, or read fewer channels"
        )
    return out


def _limited(account: Account, channels: Iterable[str]) -> int:
    return sum(1 for c in channels if c not in account.moderates)


def _pack(
    by_reader: dict[str, list[str]],
    per_conn: int,
    max_rate: float,
    rates: Mapping[str, float],
    *,
    start: int,
    backup: bool,
) -> list[ReadConn]:
    """Each reader's channels on as few connections as the bounds allow, busiest first."""
    conns: list[ReadConn] = []
    for reader in sorted(by_reader, key=lambda r: (r == ANONYMOUS, r)):
        current: list[str] = []
        load = 0.0
        for name in sorted(by_reader[reader], key=lambda n: (-rates.get(n, 0.0), n)):
            rate = rates.get(name, 0.0)
            if current and (len(current) >= per_conn or load + rate > max_rate):
                conns.append(ReadConn(start + len(conns), reader, tuple(current), backup))
                current, load = [], 0.0
            current.append(name)
            load += rate
        if current:
            conns.append(ReadConn(start + len(conns), reader, tuple(current), backup))
    return conns
