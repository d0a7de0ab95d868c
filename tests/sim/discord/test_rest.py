"""The REST endpoints: /gateway/bot, /users/@me, the application, 401 and 404."""

from __future__ import annotations

from tests.conftest import SimFactory, http_json
from tests.sim.discord.helpers import ready_connection


async def test_rest_when_token_valid_returns_gateway_bot_with_exact_json_type(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=3, max_concurrency=2, session_start_total=50)
    status, body, ctype = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert status == 200
    assert ctype == "application/json"
    assert body["url"] == sim.gateway_url
    assert body["shards"] == 3
    limit = body["session_start_limit"]
    assert limit["total"] == 50
    assert limit["remaining"] == 50
    assert limit["max_concurrency"] == 2
    assert limit["reset_after"] > 0
    gw, _ = await ready_connection(sim, [0, 3])
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["session_start_limit"]["remaining"] == 49
    for path in ("/api/v10/users/@me", "/api/v10/applications/@me", "/api/v10/oauth2/applications/@me"):
        status, body, ctype = await http_json(sim, "GET", path)
        assert status == 200
        assert ctype == "application/json"
        assert body["id"]
    status, body, _ = await http_json(sim, "GET", "/api/v10/gateway")
    assert status == 200
    assert body == {"url": sim.gateway_url}
    await gw.close()


async def test_rest_when_token_malformed_returns_401(sim_factory: SimFactory) -> None:
    sim = await sim_factory()
    for token in ("not-a-token", "abc.def", None):
        status, body, ctype = await http_json(sim, "GET", "/api/v10/gateway/bot", token=token)
        assert status == 401
        assert ctype == "application/json"
        assert body["message"] == "401: Unauthorized"
    status, _, _ = await http_json(sim, "GET", "/api/v10/nothing-here")
    assert status == 404


async def test_gateway_bot_when_guilds_grow_recommends_one_shard_per_recommend_per_rounded_up(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(shards=2, guilds_per_shard=5, recommend_per=4, shard_multiple=1)
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["shards"] == 3  # ceil(10 / 4), above --shards
    status, _, _ = await http_json(sim, "POST", "/_sim/guilds", {"add": 3})
    assert status == 200
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["shards"] == 4  # ceil(13 / 4)
    sim = await sim_factory(shards=2, guilds_per_shard=5, recommend_per=4, shard_multiple=8)
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["shards"] == 8
    sim = await sim_factory(shards=3, guilds_per_shard=1)
    _, body, _ = await http_json(sim, "GET", "/api/v10/gateway/bot")
    assert body["shards"] == 3  # never fewer than --shards
