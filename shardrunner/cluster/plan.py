"""Which worker runs which shards: consecutive ranges, as even as possible."""

from __future__ import annotations


def plan(num_shards: int, workers: int) -> list[list[int]]:
    """Consecutive shard ranges: 10 shards on 3 workers -> 0-3, 4-6, 7-9 (never more workers than shards)."""
    workers = max(1, min(workers, num_shards))
    base, extra = divmod(num_shards, workers)
    ranges, start = [], 0
    for i in range(workers):
        size = base + (1 if i < extra else 0)
        ranges.append(list(range(start, start + size)))
        start += size
    return ranges


def span(ids: list[int]) -> str:
    """A range of shard ids for people: ``0-3``, ``7``, or ``-`` for none."""
    return f"{ids[0]}-{ids[-1]}" if len(ids) > 1 else str(ids[0]) if ids else "-"
