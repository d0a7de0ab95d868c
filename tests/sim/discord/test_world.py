"""The simulated bot's token."""

from __future__ import annotations

import pytest


def test_make_token_when_parts_contain_a_dot_refuses() -> None:
    from shardrunner.sim.discord.world import make_token, token_user_id

    assert token_user_id(make_token(42)) == 42
    with pytest.raises(ValueError, match="contain no dot"):
        make_token(42, signature="a.b")


def test_world_when_guilds_join_and_leave_every_layout_follows() -> None:
    from shardrunner.protocol.discord import shard_for_guild
    from shardrunner.sim.discord.config import SimConfig
    from shardrunner.sim.discord.world import World

    world = World(SimConfig(shards=2, guilds_per_shard=3))
    cached = {n: [list(world.guilds_for(i, n)) for i in range(n)] for n in (2, 3)}
    assert world.guild_counts(2) == [3, 3]
    joined = [world.add_guild() for _ in range(4)]
    assert len(set(joined)) == 4
    assert world.guild_total == 10
    # Joins go round-robin over the shards of any count.
    assert [shard_for_guild(g, 2) for g in joined] in ([0, 1, 0, 1], [1, 0, 1, 0])
    for n in (2, 3):
        for i in range(n):
            assert world.guilds_for(i, n) == cached[n][i] + [g for g in joined if shard_for_guild(g, n) == i]
    assert sum(len(g) for g in world.guilds_by_shard) == 10  # the generator draws from these
    world.guild_create(joined[0], 50)
    world.remove_guild(joined[0])
    world.remove_guild(cached[3][0][0])
    assert not world.has_guild(joined[0])
    for n in (2, 3):
        assert sum(world.guild_counts(n)) == 8
        for i in range(n):
            assert world.guilds_for(i, n) == [g for g in world.guild_ids if shard_for_guild(g, n) == i]
    with pytest.raises(KeyError):
        world.remove_guild(joined[0])
    with pytest.raises(ValueError, match="already there"):
        world.add_guild(joined[1])
