"""GUILD_MEMBERS_CHUNK."""

from __future__ import annotations

from shardrunner.sim.discord.entities import EntityFactory, GuildModel, snowflake


def test_members_chunk_when_ids_unknown_lists_them_in_not_found(
    factory: EntityFactory, model: GuildModel
) -> None:
    stranger = snowflake(1_700_000_000_000, 9)

    chunk = factory.members_chunk(
        model, chunk_index=0, chunk_count=1, member_ids=[*model.member_ids[:5], stranger], nonce="abc"
    )

    assert [m["user"]["id"] for m in chunk["members"]] == [str(u) for u in model.member_ids[:5]]
    assert chunk["not_found"] == [str(stranger)]
    assert chunk["nonce"] == "abc"


def test_members_chunk_when_no_nonce_omits_it(factory: EntityFactory, model: GuildModel) -> None:
    chunk = factory.members_chunk(
        model, chunk_index=0, chunk_count=1, member_ids=model.member_ids, nonce=None
    )

    assert "nonce" not in chunk
    assert chunk["not_found"] == []
