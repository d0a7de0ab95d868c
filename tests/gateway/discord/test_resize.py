"""Discord's reshard rules: when one is due, to how many shards, and each refusal in one sentence."""

from __future__ import annotations

from typing import Any

from shardrunner.gateway.discord.resize import DiscordRules, propose
from shardrunner.gateway.platform import Resize

RULES = DiscordRules(reshard_at=0.8, target=0.5, reserve=10, capacity=100)


def plan(**overrides: Any) -> Resize | None:
    args: dict[str, Any] = {
        "rules": RULES,
        "current": 4,
        "requested": None,
        "recommended": 4,
        "guilds": 330,
        "max_concurrency": 1,
        "identify_window": 5.0,
        "remaining": 1000,
        "reset_after_ms": 3_600_000,
        "auto": False,
    }
    args.update(overrides)
    return propose(**args)


def test_auto_when_the_fill_is_below_the_threshold_proposes_nothing() -> None:
    assert plan(guilds=319, auto=True) is None  # 79.75% of 4 x 100


def test_auto_when_the_fill_reaches_the_threshold_brings_it_to_the_target() -> None:
    r = plan(guilds=332, auto=True)
    assert r is not None
    assert r.refused is None
    assert r.count == 7  # ceil(332 / 50)
    assert r.fill == 332 / 400
    assert r.new_fill == 332 / 700
    assert "83%" in r.reason
    assert "80%" in r.reason


def test_auto_when_discord_recommends_more_takes_the_recommendation() -> None:
    r = plan(guilds=330, recommended=12, auto=True)
    assert r is not None
    assert r.count == 12
    assert "recommends 12" in r.reason


def test_auto_for_a_large_bot_rounds_up_to_its_multiple() -> None:
    r = plan(current=16, guilds=1300, max_concurrency=16, auto=True)
    assert r is not None
    assert r.refused is None
    assert r.count == 32  # ceil(1300 / 50) = 26, up to a multiple of 16
    assert r.seconds == 5.0  # two rounds of 16 buckets: the second one window later


def test_a_count_that_is_not_the_bots_multiple_is_refused_with_the_two_next() -> None:
    r = plan(current=16, requested=24, guilds=100, max_concurrency=16)
    assert r is not None
    assert r.refused is not None
    assert "multiples of 16" in r.refused
    assert "16 or 32" in r.refused
    assert "4010" in r.refused


def test_a_count_too_small_for_the_guilds_is_refused() -> None:
    r = plan(requested=3, guilds=330)
    assert r is not None
    assert r.refused is not None
    assert "cannot hold 330 guilds" in r.refused
    assert "at least 4" in r.refused
    assert "4011" in r.refused


def test_the_running_count_is_refused() -> None:
    r = plan(requested=4)
    assert r is not None
    assert r.refused == "the bot already runs 4 shards"


def test_a_budget_without_the_reserve_is_refused_with_the_reset_time() -> None:
    r = plan(requested=8, remaining=17)
    assert r is not None
    assert r.refused is not None
    assert "17 more session starts" in r.refused
    assert "8 plus 10" in r.refused
    assert "3600 s" in r.refused
    assert plan(requested=8, remaining=18).refused is None  # type: ignore[union-attr]


def test_the_identify_limits_time_counts_rounds_of_buckets() -> None:
    r = plan(requested=8, max_concurrency=1, identify_window=5.0)
    assert r is not None
    assert r.seconds == 35.0
    r = plan(requested=8, max_concurrency=4, identify_window=5.0)
    assert r is not None
    assert r.seconds == 5.0
    assert r.starts_needed == 8
