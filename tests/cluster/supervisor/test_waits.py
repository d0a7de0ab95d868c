"""The identify waits' histogram: a wait on a bound counts in that bucket, Prometheus' cumulative view."""

from __future__ import annotations

from shardrunner.cluster.supervisor.waits import BOUNDS, WaitHistogram


def test_wait_histogram_when_waits_fall_on_and_between_bounds_counts_them_cumulatively() -> None:
    h = WaitHistogram()
    for seconds in (0.0, 0.1, 0.11, 5.0, 9999.0):
        h.observe(seconds)
    cumulative = dict(h.cumulative())
    assert (cumulative["0.1"], cumulative["0.5"], cumulative["5.0"], cumulative["3600.0"]) == (2, 3, 4, 4)
    assert cumulative["+Inf"] == h.count == 5
    assert len(cumulative) == len(BOUNDS) + 1
    copy = h.copy()
    h.observe(1.0)
    assert (copy.count, copy.sum) == (5, 0.0 + 0.1 + 0.11 + 5.0 + 9999.0), "a copy does not follow"
