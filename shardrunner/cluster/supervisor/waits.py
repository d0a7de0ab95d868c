"""How long identifies waited for their grant: a histogram kept as plain counts (no metrics library
here, so the supervisor pays nothing for it unless the metrics endpoint reads it)."""

from __future__ import annotations

from bisect import bisect_left
from typing import Final

#: Upper bounds (seconds) of the buckets. Waits span milliseconds (a free bucket) to an hour (10,000
#: shards in 16 buckets of 5 s take 52 minutes to start), so the bounds grow roughly geometrically.
BOUNDS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class WaitHistogram:
    """Counts of waits per bucket (``counts[i]``: waits of at most ``BOUNDS[i]``; the last one: more
    than every bound), and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(BOUNDS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(BOUNDS, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, waits of at most le)`` for each bound and ``+Inf``, as Prometheus lists them."""
        out, total = [], 0
        for bound, n in zip((*BOUNDS, float("inf")), self.counts, strict=True):
            total += n
            out.append(("+Inf" if bound == float("inf") else repr(bound), total))
        return out

    def copy(self) -> WaitHistogram:
        other = WaitHistogram()
        other.counts, other.sum = list(self.counts), self.sum
        return other
