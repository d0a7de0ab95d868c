"""protocol.routing: which connection owns a routing key, the one place each platform's formula is."""

from __future__ import annotations

import pytest

from shardrunner.protocol.discord import shard_for_guild
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.routing import owner

GUILD = (5 << 22) | 4321  # shard 1 of 4, shard 5 of 8


def test_owner_when_discord_applies_the_shard_formula() -> None:
    conns = [ConnKey("discord", 0, i, 4) for i in range(4)]
    assert owner("discord", GUILD, conns) == conns[shard_for_guild(GUILD, 4)]
    assert owner("discord", str(GUILD), conns) == conns[shard_for_guild(GUILD, 4)]


def test_owner_when_two_sets_run_takes_the_newest_one() -> None:
    old = [ConnKey("discord", 0, i, 4) for i in range(4)]
    new = [ConnKey("discord", 1, i, 8) for i in range(8)]
    assert shard_for_guild(GUILD, 4) != shard_for_guild(GUILD, 8)
    assert owner("discord", GUILD, old + new) == new[shard_for_guild(GUILD, 8)]


def test_owner_when_the_key_or_the_connections_do_not_fit_says_none_or_raises() -> None:
    conns = [ConnKey("discord", 0, i, 4) for i in range(4)]
    assert owner("discord", None, conns) is None
    assert owner("discord", GUILD, conns[:1] if shard_for_guild(GUILD, 4) else conns[1:2]) is None
    assert owner("twitch", "#chan", conns) is None  # no connection of that platform here
    with pytest.raises(ValueError, match="invalid literal"):
        owner("discord", "not-a-guild", conns)
