"""Which worker runs which connections: consecutive ranges, as even as possible."""

from __future__ import annotations

from shardrunner.gateway.platform import range_sizes
from shardrunner.protocol.keys import ConnKey


def plan(conns: list[ConnKey], workers: int) -> list[list[ConnKey]]:
    """Consecutive ranges of ``conns`` (in their order): 10 connections on 3 workers -> 4, 3, 3;
    never more workers than connections, and at least one (an empty plan gives one empty range)."""
    ranges, start = [], 0
    for size in range_sizes(len(conns), workers):
        ranges.append(conns[start : start + size])
        start += size
    return ranges


def plan_platforms(conns: list[ConnKey], workers: int) -> list[list[ConnKey]]:
    """Each platform's connections spread on the workers by :func:`plan` on its own, worker ``i``
    getting range ``i`` of each: every worker gets a share of every platform, and a platform's plan
    can order its connections for where they land (Twitch puts a channel's two readers in two
    ranges). One platform alone gives :func:`plan`'s ranges."""
    groups: dict[str, list[ConnKey]] = {}
    for conn in conns:
        groups.setdefault(conn.platform, []).append(conn)
    if len(groups) <= 1:
        return plan(conns, workers)
    ranges = [plan(group, workers) for group in groups.values()]
    slots = max(len(r) for r in ranges)
    return [[c for r in ranges if i < len(r) for c in r[i]] for i in range(slots)]


def span(conns: list[ConnKey]) -> str:
    """A range of shards for people: ``0-3``, ``7``, or ``-`` for none."""
    ids = [c.shard for c in conns]
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0]) if ids else "-"
