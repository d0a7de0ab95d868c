"""Placement: which blocks a host claims or releases, decided from what it sees (pure, no I/O).

The supervisor reads the lease table and the directory each heartbeat, calls :func:`decide`, and
acts on the :class:`Decision` (claims through the leases, a release after its handoff). The rules:

1. A host that has not ``settled`` (just registered: it waits two heartbeats, so that hosts started
   together see each other first) decides nothing. While ``releasing`` (a handoff of its own under
   way) it releases nothing new; it may still claim.
2. *Free* blocks have no holder. A free block is *orphaned* when its last holder did not release it
   (the holder died or stalled past its lease); *released* when it gave it up on purpose; never held
   when it has no last holder.
3. A standby (holding nothing) claims every orphaned block when it is the first live standby by name,
   so two standbys do not race for one dead host's blocks (the second takes what is orphaned later,
   once the first is active). Once it holds blocks it is active (the caller changes its role). It
   claims nothing else while an active host is live: released and never-held blocks go by the
   targets of the active hosts. With no active host live (the last one stopped), it claims every
   free block: a bot is never left unrun while a standby is up.
4. An active host's target is its share of :func:`targets` over the live active hosts (itself
   included). Under target, it claims free blocks lowest index first, up to the target: released and
   never-held ones, and orphaned ones only when no standby is live (else they are the standby's).
   Over target, it releases ONE block, its highest, and only when every block is held: a cluster
   still taking blocks over does not also rebalance, and hosts over target give blocks up one at a
   time across the cluster.
5. ``why`` says it in one sentence for the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from shardrunner.cluster.hosts.directory import HostInfo
from shardrunner.cluster.hosts.leases import Holder, LastHolder


def targets(blocks: int, hosts: list[tuple[str, int]]) -> dict[str, int]:
    """``blocks`` split over ``hosts`` (name, capacity: below 1 counts as 1) in proportion to their
    capacity, by largest remainder (ties: the lower name gets the block); every block goes to one."""
    if not hosts:
        return {}
    caps = {name: max(1, capacity) for name, capacity in sorted(hosts)}
    total = sum(caps.values())
    shares = {name: divmod(blocks * cap, total) for name, cap in caps.items()}
    result = {name: whole for name, (whole, _) in shares.items()}
    left = blocks - sum(result.values())
    for name in sorted(shares, key=lambda n: (-shares[n][1], n))[:left]:
        result[name] += 1
    return result


@dataclass(frozen=True)
class Decision:
    """Blocks to claim and to release (at most one) now, and why, for the log."""

    claim: list[int]
    release: list[int]
    why: str


def _nothing(why: str) -> Decision:
    return Decision([], [], why)


def _blocks(indexes: list[int]) -> str:
    return f"{len(indexes)} block{'s' if len(indexes) != 1 else ''} ({', '.join(map(str, indexes))})"


def _of(orphans: list[int], last: dict[int, LastHolder]) -> str:
    return ", ".join(sorted({last[i].host for i in orphans}))


def decide(
    *,
    me: str,
    standby: bool,
    settled: bool,
    blocks: int,
    held: set[int],
    holders: dict[int, Holder],
    last: dict[int, LastHolder],
    live: list[HostInfo],
    releasing: bool,
) -> Decision:
    """What host ``me`` should claim or release now (the rules of the module's docstring)."""
    if not settled:
        return _nothing("settling: waiting for the other hosts to register")
    free = [i for i in range(blocks) if i not in holders and i not in held]
    orphaned = [i for i in free if i in last and not last[i].released]
    standbys = sorted({h.name for h in live if h.role == "standby" and h.name != me})
    if standby and not held:
        first = min([*standbys, me])
        if first != me:
            return _nothing(f"standby: {first} is the first standby")
        if not any(h.role == "active" and h.name != me for h in live) and free:
            return Decision(free, [], f"claiming {_blocks(free)}: no active host is live (standby takeover)")
        if not orphaned:
            return _nothing("standby: no orphaned block")
        return Decision(
            orphaned, [], f"claiming {_blocks(orphaned)} orphaned of {_of(orphaned, last)} (standby takeover)"
        )
    actives = [(h.name, h.capacity) for h in live if h.role == "active" and h.name != me]
    capacity = next((h.capacity for h in live if h.name == me), 1)
    target = targets(blocks, [*actives, (me, capacity)])[me]
    mine = len(held)
    if mine < target:
        claimable = sorted(i for i in free if i not in orphaned or not standbys)
        if claimable:
            claim = claimable[: target - mine]
            taken = [i for i in claim if i in orphaned]
            whose = f", {len(taken)} orphaned of {_of(taken, last)} (no standby live)" if taken else ""
            return Decision(claim, [], f"claiming {_blocks(claim)}{whose}: target {target}, holding {mine}")
        if orphaned:
            return _nothing(
                f"under target ({mine} of {target}): standby {standbys[0]} takes the orphaned blocks"
            )
        return _nothing(f"under target ({mine} of {target}): no free block yet")
    if mine > target:
        if releasing:
            return _nothing(f"over target ({mine} of {target}): a handoff is under way")
        if free:
            return _nothing(f"over target ({mine} of {target}): {len(free)} free blocks to be taken first")
        block = max(held)
        return Decision([], [block], f"releasing block {block}: over target ({mine} of {target})")
    return _nothing(f"balanced: holding {mine} of {target}")
