"""The hosts section's parsers: a Redis URL is checked whole at load, and its password never shown."""

from __future__ import annotations

import pytest

from shardrunner.settings import SettingsError, load_settings
from shardrunner.settings.hosts import coordinator_url, to_redis_url


def test_to_redis_url_when_the_port_is_no_number_refuses_it_in_one_sentence() -> None:
    with pytest.raises(ValueError, match="its port a number"):
        to_redis_url("redis://:s3cret@db.example:notaport/0")
    assert to_redis_url("rediss://:s3cret@db.example:6380/0") == "rediss://:s3cret@db.example:6380/0"


def test_load_settings_when_the_coordinator_url_is_bad_never_shows_its_password() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"sim": True}, {"SHARDRUNNER_COORDINATOR": "redis://:s3cret@h:x/0"}, None)
    assert "coordinator" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_coordinator_url_when_the_password_is_separate_puts_it_in_url_encoded() -> None:
    class Given:
        coordinator = "redis://db.example:6379/0"
        coordinator_password = "p@ss word"

    assert coordinator_url(Given()) == "redis://:p%40ss%20word@db.example:6379/0"
