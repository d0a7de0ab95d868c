"""Exponential backoff with full jitter."""

from __future__ import annotations

import pytest

from shardrunner.gateway.backoff import Backoff


def test_backoff_when_attempts_grow_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(lambda: 1.0, base=1.0, cap=10.0)
    assert [backoff.next() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    backoff.reset()
    assert backoff.next() == 1.0
    jitter = Backoff(lambda: 0.0, base=1.0, cap=10.0)
    assert jitter.next() == 0.0, "full jitter: a delay may be anything from zero"
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(lambda: 1.0, base=5.0, cap=1.0)
