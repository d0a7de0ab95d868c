"""Which worker runs which connections: consecutive ranges, as even as possible."""

from __future__ import annotations

from shardrunner.protocol.keys import ConnKey


def plan(conns: list[ConnKey], workers: int) -> list[list[ConnKey]]:
    """Consecutive ranges of ``conns`` (in their order): 10 connections on 3 workers -> 4, 3, 3;
    never more workers than connections, and at least one (an empty plan gives one empty range)."""
    workers = max(1, min(workers, len(conns)))
    base, extra = divmod(len(conns), workers)
    ranges, start = [], 0
    for i in range(workers):
        size = base + (1 if i < extra else 0)
        ranges.append(conns[start : start + size])
        start += size
    return ranges


def span(conns: list[ConnKey]) -> str:
    """A range of shards for people: ``0-3``, ``7``, or ``-`` for none."""
    ids = [c.shard for c in conns]
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0]) if ids else "-"
