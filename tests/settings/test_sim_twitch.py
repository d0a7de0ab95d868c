"""The ``sim.twitch`` section: the limit windows (``--join-window``, ``--message-window``), checked,
and the accounts' limits in them, verified ones too."""

from __future__ import annotations

import pytest

from shardrunner.settings import SettingsError
from shardrunner.sim.twitch.config import load_twitch_config


def test_sim_twitch_windows_when_not_set_are_twitchs_10_and_30_seconds() -> None:
    config, _ = load_twitch_config({}, {}, None)
    limits = config.limits("bot")
    assert (limits.login_window, limits.join_window, limits.privmsg_window) == (10.0, 10.0, 30.0)


@pytest.mark.parametrize("name", ["join_window", "message_window"])
def test_sim_twitch_windows_when_not_above_zero_fail_naming_the_option(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}.*greater than 0"):
        load_twitch_config({name: "0"}, {}, None)


def test_sim_twitch_windows_when_shortened_hold_every_accounts_limits() -> None:
    config, _ = load_twitch_config(
        {"join_window": "3", "verified": "big"}, {"SHARDRUNNER_SIM_TWITCH_MESSAGE_WINDOW": "10"}, None
    )
    for login, counts in (("bot", (20, 20, 20)), ("big", (200, 2000, 7500))):
        limits = config.limits(login)
        assert (limits.login_count, limits.join_count, limits.privmsg_count) == counts
        assert (limits.login_window, limits.join_window) == (3.0, 3.0)
        assert (limits.privmsg_window, limits.privmsg_mod_window) == (10.0, 10.0)
