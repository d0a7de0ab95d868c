"""What a worker's bus refuses from a member, and how it says so (docs/delivery.md, bad input).

Anything may connect to a worker's bus: a bot of another version, a buggy one, a rogue. Nothing it
sends may stop the worker's loop or take another member's events. A refused message is counted
(:attr:`Router.rejected <shardrunner.bus.router.Router.rejected>`, the worker's ``bus_rejected`` in
``shardrunner status`` and the metrics), logged and answered with a
:class:`~shardrunner.bus.protocol.Rejected` saying why, each at most once per second per peer (a
peer that sends garbage in a loop gets no more attention than that). Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import Final, TypeVar

from shardrunner.bus import protocol as p
from shardrunner.bus.groups import Group, Member

_V = TypeVar("_V")

#: A peer is told (and the log says) at most once per this many seconds; the count is exact.
TELL_EVERY_S: Final = 1.0
#: State requests a peer may make in a burst, and how many come back per second after that.
STATE_BURST: Final = 8
STATE_PER_S: Final = 1.0
#: Peers remembered for the two limits above; past that the oldest are forgotten.
PEERS_KEPT: Final = 4096
#: Consumer groups a worker keeps (each holds up to its bounds of events while it has no member).
MAX_GROUPS: Final = 256
#: The longest timeout a command may ask for, in seconds.
MAX_COMMAND_TIMEOUT_S: Final = 3600.0
#: A bus message larger than this closes its peer's connection (ZeroMQ's ``MAXMSGSIZE``, checked
#: before the message is read into memory): commands and joins are a few kilobytes.
MAX_MESSAGE_BYTES: Final = 4 << 20


def not_joined(what: str, group: str, member: str) -> str:
    return f"{what} for member {member!r} of group {group!r}, which has not joined"


def ack(member: Member | None, ack: p.Ack, identity: bytes | None) -> str | None:
    """Why ``ack`` is refused, or None: its member has not joined, or is another connection's; it
    acknowledges a batch never sent, or goes backwards. ``identity`` None: not checked."""
    if member is None:
        return not_joined("ack", ack.group, ack.member)
    if identity is not None and identity != member.identity:
        return f"ack for member {ack.member!r} of group {ack.group!r} from another connection"
    if ack.batch >= member.next_batch:
        return f"ack for batch {ack.batch}, beyond the last one sent ({member.next_batch - 1})"
    if ack.batch < member.acked:
        return f"ack for batch {ack.batch} goes backwards (batch {member.acked} was acknowledged)"
    return None


def leave(group: Group | None, name: str, member: str, identity: bytes | None) -> str | None:
    """Why a leave is refused, or None: the member has not joined, or is another connection's."""
    m = group.members.get(member) if group is not None else None
    if m is None:
        return not_joined("leave", name, member)
    if identity is not None and identity != m.identity:
        return f"leave for member {member!r} of group {name!r} from another connection"
    return None


def join(join: p.Join, groups: Collection[str]) -> str | None:
    """Why a join is refused, or None: it would make one group more than :data:`MAX_GROUPS`."""
    if join.group not in groups and len(groups) >= MAX_GROUPS:
        return f"this worker keeps at most {MAX_GROUPS} consumer groups: group {join.group!r} is refused"
    return None


def other_join(alive: p.Alive, join: p.Join) -> str:
    return f"alive of member {alive.member!r} repeats a join of another member ({join.member!r})"


def command(command: p.Command) -> str | None:
    """Why a command is refused before it runs, or None (a timeout the event loop cannot take)."""
    if not math.isfinite(command.timeout) or not 0 < command.timeout <= MAX_COMMAND_TIMEOUT_S:
        return f"a command's timeout must be more than 0 and at most {MAX_COMMAND_TIMEOUT_S:g} s"
    return None


#: What a member may send; the rest (a worker's own messages) is refused.
FROM_MEMBERS: Final = (p.Join, p.Leave, p.Alive, p.Ack, p.Command, p.StateRequest)


def unexpected(message: p.BusMessage) -> str:
    return f"{type(message).__name__} is sent by workers, not to them"


def frames(count: int) -> str:
    return f"a bus message is one frame, not {count}"


def undecodable(error: Exception) -> str:
    return f"not a bus message ({str(error)[:200]})"


class Peers:
    """Per peer (its identity in the router), when it was last told and its state request budget,
    for at most :data:`PEERS_KEPT` peers."""

    def __init__(self) -> None:
        self._told: dict[bytes, float] = {}
        self._state: dict[bytes, tuple[float, float]] = {}  # identity -> (tokens, at)

    def tell(self, identity: bytes, now: float) -> bool:
        """Whether to tell ``identity`` (and log) about a refusal now."""
        last = self._told.get(identity)
        if last is not None and now - last < TELL_EVERY_S:
            return False
        _keep(self._told, identity, now)
        return True

    def state_allowed(self, identity: bytes, now: float) -> bool:
        """Whether a state request of ``identity`` is answered now (a token bucket)."""
        tokens, at = self._state.get(identity, (float(STATE_BURST), now))
        tokens = min(float(STATE_BURST), tokens + (now - at) * STATE_PER_S)
        allowed = tokens >= 1.0
        _keep(self._state, identity, (tokens - 1.0 if allowed else tokens, now))
        return allowed


def _keep(table: dict[bytes, _V], identity: bytes, value: _V) -> None:
    table.pop(identity, None)
    table[identity] = value  # the newest last, so the oldest go first
    while len(table) > PEERS_KEPT:
        del table[next(iter(table))]


def state_refusal() -> str:
    return (
        f"too many state requests (at most {STATE_BURST} at once, then {STATE_PER_S:g} per second): "
        "this one is not answered"
    )
