"""The simulated bot's token."""

from __future__ import annotations

import pytest


def test_make_token_when_parts_contain_a_dot_refuses() -> None:
    from shardrunner.sim.discord.world import make_token, token_user_id

    assert token_user_id(make_token(42)) == 42
    with pytest.raises(ValueError, match="contain no dot"):
        make_token(42, signature="a.b")
