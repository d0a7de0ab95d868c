"""The ``twitch`` section: the limit windows (``--twitch-join-window``, ``--twitch-message-window``),
checked, and carried into the plan's budgets and every account's limits, verified ones too."""

from __future__ import annotations

import pytest

from shardrunner.gateway.twitch.config import JOIN, JOIN_VERIFIED, LOGIN, LOGIN_VERIFIED, PartConfig
from shardrunner.gateway.twitch.discovery import discover_from
from shardrunner.settings import load_settings
from tests.settings.helpers import load_error

TWITCH = {"twitch_channels": "chan0", "twitch_accounts": "bot:abc,big:abc", "twitch_verified": "big"}


def test_twitch_windows_when_not_set_are_twitchs_10_and_30_seconds() -> None:
    settings = load_settings(TWITCH, {}, None)
    assert (settings.twitch_join_window, settings.twitch_message_window) == (10.0, 30.0)


@pytest.mark.parametrize("name", ["twitch_join_window", "twitch_message_window"])
@pytest.mark.parametrize("value", ["0", "-1"])
def test_twitch_windows_when_not_above_zero_fail_naming_the_option(name: str, value: str) -> None:
    message = load_error({**TWITCH, name: value}, {})
    assert name in message
    assert "greater than 0" in message


async def test_twitch_windows_when_shortened_are_the_budgets_and_every_accounts_pacing() -> None:
    settings = load_settings(
        {**TWITCH, "twitch_join_window": "3"}, {"SHARDRUNNER_TWITCH_MESSAGE_WINDOW": "10"}, None
    )
    plan = await discover_from(settings)
    budgets = {b.name: (b.limit, b.window) for b in plan.budgets}
    assert budgets == {
        JOIN: (20, 3.0),
        JOIN_VERIFIED: (2000, 3.0),
        LOGIN: (20, 3.0),
        LOGIN_VERIFIED: (200, 3.0),
    }
    part = PartConfig.decode(plan.part_config())
    for login, counts in (("bot", (20, 20, 20)), ("big", (200, 2000, 7500))):
        limits = part.limits_of(login)
        assert (limits.login_count, limits.join_count, limits.privmsg_count) == counts
        assert (limits.login_window, limits.join_window) == (3.0, 3.0)
        assert (limits.privmsg_window, limits.privmsg_mod_window) == (10.0, 10.0)
