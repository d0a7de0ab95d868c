"""Snowflakes."""

from __future__ import annotations

import pytest

from shardrunner.sim.discord.entities import EPOCH_MS, snowflake


def test_snowflake_encodes_timestamp_and_low_bits() -> None:
    sf = snowflake(1_700_000_000_123, 77)
    assert (sf >> 22) + EPOCH_MS == 1_700_000_000_123
    assert sf & (2**22 - 1) == 77


@pytest.mark.parametrize(("timestamp_ms", "low"), [(EPOCH_MS, -1), (EPOCH_MS, 2**22), (EPOCH_MS - 1, 0)])
def test_snowflake_when_out_of_range_raises(timestamp_ms: int, low: int) -> None:
    with pytest.raises(ValueError, match=r"low|epoch"):
        snowflake(timestamp_ms, low)
