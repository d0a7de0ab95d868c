"""The plan: consecutive connection ranges per worker."""

from __future__ import annotations

import pytest

from shardrunner.cluster.plan import plan, span
from shardrunner.protocol.keys import ConnKey


@pytest.mark.parametrize(
    ("shards", "workers", "expected"),
    [
        (10, 3, ["0-3", "4-6", "7-9"]),
        (8, 2, ["0-3", "4-7"]),
        (2, 4, ["0", "1"]),
        (1, 1, ["0"]),
    ],
)
def test_plan_when_shards_do_not_divide_evenly_gives_consecutive_near_equal_ranges(
    shards: int, workers: int, expected: list[str]
) -> None:
    conns = [ConnKey("discord", 0, i, shards) for i in range(shards)]
    ranges = plan(conns, workers)
    assert [span(r) for r in ranges] == expected
    assert [c for r in ranges for c in r] == conns


def test_plan_when_two_sets_run_keeps_each_range_in_key_order() -> None:
    conns = [ConnKey("discord", 0, i, 2) for i in range(2)] + [ConnKey("discord", 1, i, 4) for i in range(4)]
    assert plan(conns, 2) == [conns[:3], conns[3:]]
    assert span([]) == "-"
