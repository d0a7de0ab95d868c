"""``load_settings`` and ``Settings``: precedence, sources, parsing, one-sentence errors, the token."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import ALL_INTENTS, PRIVILEGED_INTENTS
from shardrunner.settings import SETTINGS, SettingsError, load_settings
from shardrunner.settings.sections import available_cpus
from shardrunner.settings.values import enabled_platforms
from tests.settings.helpers import SIM, TOKEN, load_error, write_config

# -- precedence and sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected", "source"),
    [
        (("cli", "env", "file"), 4, "command line --workers"),
        (("env", "file"), 3, "environment variable SHARDRUNNER_WORKERS"),
        (("file",), 2, "config file {path}"),
        ((), available_cpus(), "default"),
    ],
)
def test_load_settings_when_sources_overlap_highest_wins_and_source_says_so(
    tmp_path: Path, layers: tuple[str, ...], expected: int, source: str
) -> None:
    path = write_config(tmp_path, "sim = true\nworkers = 2\n")
    cli: dict[str, object] = {"sim": True, "workers": "4" if "cli" in layers else None}
    env = {"SHARDRUNNER_WORKERS": "3"} if "env" in layers else {}
    settings = load_settings(cli, env, path if "file" in layers else None)
    assert settings.workers == expected
    assert settings.source("workers") == source.format(path=path)


def test_load_settings_when_each_setting_comes_from_another_source_tracks_each(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'sim = true\nlog_level = "debug"\nlarge-threshold = 100\n')
    settings = load_settings(
        {"large_threshold": "60", "token": None},
        {"SHARDRUNNER_HUNG_AFTER": "2.5", "SHARDRUNNER_LARGE_THRESHOLD": "70"},
        path,
    )
    assert (settings.large_threshold, settings.hung_after, settings.log_level) == (60, 2.5, "debug")
    assert settings.source("large_threshold") == "command line --large-threshold"
    assert settings.source("hung_after") == "environment variable SHARDRUNNER_HUNG_AFTER"
    assert settings.source("log_level") == f"config file {path}"
    assert settings.source("sim") == f"config file {path}"
    assert settings.source("progress") == "default"


def test_load_settings_when_flag_is_false_on_command_line_source_names_no_option() -> None:
    settings = load_settings({"sim": False, "token": TOKEN}, {"SHARDRUNNER_SIM": "1"}, None)
    assert settings.sim is False
    assert settings.source("sim") == "command line --no-sim"


def test_load_settings_when_env_var_is_empty_treats_it_as_unset() -> None:
    settings = load_settings(SIM, {"SHARDRUNNER_WORKERS": "", "SHARDRUNNER_TOKEN": ""}, None)
    assert settings.source("workers") == "default"
    assert settings.token is None


def test_load_settings_when_cli_has_keys_that_name_no_setting_ignores_them() -> None:
    settings = load_settings({"sim": True, "foreground": True}, {}, None)
    assert settings.sim is True


def test_load_settings_when_config_named_by_env_reads_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nshards = 6\n")
    settings = load_settings({}, {"SHARDRUNNER_CONFIG": path}, None)
    assert settings.shards == 6
    assert settings.source("shards") == f"config file {path}"


def test_load_settings_when_config_given_and_named_by_env_uses_the_given_one(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nshards = 6\n")
    settings = load_settings({}, {"SHARDRUNNER_CONFIG": str(tmp_path / "missing.toml")}, path)
    assert settings.shards == 6


def test_source_when_name_is_unknown_raises_key_error() -> None:
    with pytest.raises(KeyError):
        load_settings(SIM, {}, None).source("porst")


# -- parsing ------------------------------------------------------------------------------------


def test_load_settings_when_nothing_given_uses_the_documented_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    settings = load_settings(SIM, {}, None)
    assert settings.workers == available_cpus()
    assert settings.shards == "auto"
    assert settings.token is None
    assert settings.api_url == "https://discord.com/api/v10"
    assert settings.run_dir == f"/tmp/shardrunner-{os.getuid()}"
    assert settings.intents == ALL_INTENTS & ~PRIVILEGED_INTENTS
    assert settings.compression is Compression.ZLIB_STREAM
    assert settings.large_threshold == 250
    assert settings.max_concurrency is None
    assert (settings.identify_window, settings.resume_window, settings.ready_timeout) == (5.0, 120.0, 60.0)
    assert (settings.worker_backoff, settings.hung_after) == (1.0, 10.0)
    assert (settings.log_level, settings.progress) == ("info", "auto")


def test_load_settings_when_xdg_runtime_dir_is_set_puts_run_dir_under_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert load_settings(SIM, {}, None).run_dir == str(tmp_path / "shardrunner")


def test_load_settings_when_run_dir_uses_tilde_expands_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/bot")
    assert load_settings({**SIM, "run_dir": "~/run"}, {}, None).run_dir == "/home/bot/run"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("TRUE", True), ("yes", True), ("On", True), ("0", False), ("false", False), ("NO", False)],
)
def test_load_settings_when_bool_env_is_a_known_word_parses_it(value: str, expected: bool) -> None:
    settings = load_settings({"token": TOKEN}, {"SHARDRUNNER_SIM": value}, None)
    assert settings.sim is expected


def test_load_settings_when_toml_gives_numbers_and_strings_accepts_both(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'sim = true\nshards = 8\nidentify-window = 1\nresume_window = "30.5"\nmax-concurrency = "auto"\n',
    )
    settings = load_settings({}, {}, path)
    assert settings.shards == 8
    assert settings.identify_window == 1.0
    assert isinstance(settings.identify_window, float)
    assert settings.resume_window == 30.5
    assert settings.max_concurrency is None


@pytest.mark.parametrize(("value", "expected"), [("auto", "auto"), ("AUTO", "auto"), ("16", 16)])
def test_load_settings_when_shards_is_auto_or_number_parses_it(value: str, expected: object) -> None:
    assert load_settings({**SIM, "shards": value}, {}, None).shards == expected


def test_load_settings_when_values_need_normalising_normalises_them() -> None:
    settings = load_settings(
        {
            **SIM,
            "api_url": "http://127.0.0.1:8900/api/v10/",
            "compression": "ZSTD-stream",
            "max_concurrency": "16",
            "log_level": "WARNING",
            "intents": "0x201",
        },
        {},
        None,
    )
    assert settings.api_url == "http://127.0.0.1:8900/api/v10"
    assert settings.compression is Compression.ZSTD_STREAM
    assert settings.max_concurrency == 16
    assert settings.log_level == "warning"
    assert settings.intents == 0x201


# -- invalid values: one sentence naming the setting, the value and its source ------------------


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SHARDRUNNER_WORKERS": "0"},
            "invalid setting workers: must be at least 1 "
            "(got 0 from environment variable SHARDRUNNER_WORKERS)",
        ),
        (
            {"SHARDRUNNER_WORKERS": "two"},
            "invalid setting workers: must be a whole number "
            "(got two from environment variable SHARDRUNNER_WORKERS)",
        ),
        (
            {"SHARDRUNNER_SHARDS": "0"},
            "invalid setting shards: must be at least 1 (got 0 from environment variable SHARDRUNNER_SHARDS)",
        ),
        (
            {"SHARDRUNNER_SHARDS": "many"},
            "invalid setting shards: must be auto or a whole number "
            "(got many from environment variable SHARDRUNNER_SHARDS)",
        ),
        (
            {"SHARDRUNNER_SIM": "maybe"},
            "invalid setting sim: must be one of 1, true, yes, on, 0, false, no, off "
            "(got maybe from environment variable SHARDRUNNER_SIM)",
        ),
        (
            {"SHARDRUNNER_API_URL": "discord.com/api"},
            "invalid setting api_url: must be an http:// or https:// URL "
            "(got discord.com/api from environment variable SHARDRUNNER_API_URL)",
        ),
        (
            {"SHARDRUNNER_INTENTS": "-1"},
            "invalid setting intents: must be at least 0 "
            "(got -1 from environment variable SHARDRUNNER_INTENTS)",
        ),
        (
            {"SHARDRUNNER_COMPRESSION": "gzip"},
            "invalid setting compression: must be one of zlib-stream, zstd-stream, none "
            "(got gzip from environment variable SHARDRUNNER_COMPRESSION)",
        ),
        (
            {"SHARDRUNNER_LARGE_THRESHOLD": "251"},
            "invalid setting large_threshold: must be at most 250 "
            "(got 251 from environment variable SHARDRUNNER_LARGE_THRESHOLD)",
        ),
        (
            {"SHARDRUNNER_LARGE_THRESHOLD": "49"},
            "invalid setting large_threshold: must be at least 50 "
            "(got 49 from environment variable SHARDRUNNER_LARGE_THRESHOLD)",
        ),
        (
            {"SHARDRUNNER_MAX_CONCURRENCY": "0"},
            "invalid setting max_concurrency: must be at least 1 "
            "(got 0 from environment variable SHARDRUNNER_MAX_CONCURRENCY)",
        ),
        (
            {"SHARDRUNNER_IDENTIFY_WINDOW": "-0.5"},
            "invalid setting identify_window: must be at least 0 "
            "(got -0.5 from environment variable SHARDRUNNER_IDENTIFY_WINDOW)",
        ),
        (
            {"SHARDRUNNER_RESUME_WINDOW": "0"},
            "invalid setting resume_window: must be greater than 0 "
            "(got 0 from environment variable SHARDRUNNER_RESUME_WINDOW)",
        ),
        (
            {"SHARDRUNNER_HUNG_AFTER": "nan"},
            "invalid setting hung_after: must be a finite number "
            "(got nan from environment variable SHARDRUNNER_HUNG_AFTER)",
        ),
        (
            {"SHARDRUNNER_WORKER_BACKOFF": "1s"},
            "invalid setting worker_backoff: must be a number "
            "(got 1s from environment variable SHARDRUNNER_WORKER_BACKOFF)",
        ),
        (
            {"SHARDRUNNER_LOG_LEVEL": "loud"},
            "invalid setting log_level: must be one of debug, info, warning, error "
            "(got loud from environment variable SHARDRUNNER_LOG_LEVEL)",
        ),
        (
            {"SHARDRUNNER_PROGRESS": "sometimes"},
            "invalid setting progress: must be one of auto, always, never "
            "(got sometimes from environment variable SHARDRUNNER_PROGRESS)",
        ),
    ],
)
def test_load_settings_when_env_value_is_invalid_raises_one_sentence(
    env: dict[str, str], message: str
) -> None:
    assert load_error({"token": TOKEN}, env) == message


def test_load_settings_when_cli_value_is_invalid_names_the_option() -> None:
    assert load_error({**SIM, "ready_timeout": "-1"}, {}) == (
        "invalid setting ready_timeout: must be greater than 0 (got -1 from command line --ready-timeout)"
    )


def test_load_settings_when_value_has_spaces_quotes_it() -> None:
    assert load_error({**SIM, "workers": "1 2"}, {}) == (
        "invalid setting workers: must be a whole number (got '1 2' from command line --workers)"
    )


# -- the token ----------------------------------------------------------------------------------


def test_load_settings_when_no_token_and_no_sim_raises_what_to_do() -> None:
    assert load_error({}, {}) == (
        "setting token is required: pass --token, set SHARDRUNNER_TOKEN or put token in the config file "
        "(or use --sim; a Twitch bot gives --twitch-accounts or --twitch-channels instead)"
    )


def test_load_settings_when_only_twitch_is_configured_needs_no_token_and_runs_twitch_alone() -> None:
    settings = load_settings({"twitch_channels": "#Foo, bar"}, {}, None)
    assert settings.token is None
    assert settings.twitch_channels == "foo,bar"
    assert enabled_platforms(settings) == ("twitch",)


def test_load_settings_when_platforms_name_discord_without_token_raises() -> None:
    assert load_error({"platforms": "discord,twitch", "twitch_channels": "a"}, {}).startswith(
        "setting token is required"
    )


def test_enabled_platforms_when_sim_and_twitch_channels_runs_both() -> None:
    settings = load_settings({"sim": True, "twitch_channels": "a"}, {}, None)
    assert enabled_platforms(settings) == ("discord", "twitch")
    assert enabled_platforms(load_settings({"sim": True}, {}, None)) == ("discord",)
    chosen = load_settings({"sim": True, "platforms": "twitch"}, {}, None)
    assert enabled_platforms(chosen) == ("twitch",)


def test_enabled_platforms_when_channels_were_added_at_run_time_runs_twitch(tmp_path: Path) -> None:
    (tmp_path / "channels.json").write_text('{"added": ["x"], "removed": []}')
    settings = load_settings({"sim": True, "run_dir": str(tmp_path)}, {}, None)
    assert enabled_platforms(settings) == ("discord", "twitch")


def test_load_settings_when_twitch_values_are_malformed_names_the_setting() -> None:
    assert "twitch_accounts" in load_error({"twitch_accounts": "nocolon"}, {})
    assert "twitch_platforms" not in load_error({"platforms": "irc"}, {})
    assert "platforms" in load_error({"platforms": "irc"}, {})
    assert "twitch_url" in load_error({"sim": True, "twitch_url": "http://x"}, {})
    assert "oauth" not in load_error({"twitch_accounts": "bad login!:oauth:secret"}, {}).split("got")[0]


def test_load_settings_when_sim_is_on_needs_no_token() -> None:
    assert load_settings({}, {"SHARDRUNNER_SIM": "true"}, None).token is None


def test_load_settings_when_token_comes_from_env_keeps_it() -> None:
    settings = load_settings({}, {"SHARDRUNNER_TOKEN": TOKEN}, None)
    assert settings.token == TOKEN
    assert settings.source("token") == "environment variable SHARDRUNNER_TOKEN"


def test_settings_when_token_is_set_masks_it_in_repr_and_redacted() -> None:
    settings = load_settings({"token": TOKEN}, {}, None)
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
    assert "token='***'" in repr(settings)
    assert settings.redacted()["token"] == "***"
    assert TOKEN not in str(settings.redacted())


def test_settings_when_redacted_gives_every_setting_as_plain_values() -> None:
    redacted = load_settings({"token": TOKEN, "compression": "none"}, {}, None).redacted()
    assert list(redacted) == [s.name for s in SETTINGS]
    assert redacted["compression"] == "none"


@pytest.mark.parametrize(("line", "secret"), [('token = "   "', "   "), ("token = 1234567890", "1234567890")])
def test_load_settings_when_token_is_invalid_masks_it_in_the_error(
    tmp_path: Path, line: str, secret: str
) -> None:
    path = write_config(tmp_path, line + "\n")
    message = load_error({}, {}, path)
    assert message.startswith("invalid setting token: ")
    assert message.endswith(f"(got *** from config file {path})")
    assert secret not in message.replace(str(path), "")


def test_settings_when_pickled_keeps_values_and_sources() -> None:
    settings = load_settings({"token": TOKEN, "workers": "3"}, {}, None)
    copy = pickle.loads(pickle.dumps(settings))
    assert copy == settings
    assert copy.source("workers") == "command line --workers"


# -- the token's shape --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "Bot MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhIjKl.secret-part",
        "MTEwMDAwMDAwMDAwMDAwMDAwMQ.secret-part",
        "aGVsbG8.GhIjKl.secret-part",  # base64 of "hello": no bot id
        "MTEwMDAwMDAwMDAwMDAwMDAwMQ.Gh$jKl.secret-part",
    ],
)
def test_load_settings_when_token_is_malformed_refuses_it_without_echoing_it(token: str) -> None:
    message = load_error({}, {"SHARDRUNNER_TOKEN": token})
    assert message.startswith("invalid setting token: must be a Discord bot token")
    assert message.endswith("(got *** from environment variable SHARDRUNNER_TOKEN)")
    assert token not in message
    assert "secret-part" not in message


def test_load_settings_when_token_is_the_simulators_accepts_it() -> None:
    from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

    token = make_token(DEFAULT_BOT_ID)
    assert load_settings({"token": token}, {}, None).token == token


# -- replace ------------------------------------------------------------------------------------


def test_settings_when_replaced_changes_values_and_their_source_only() -> None:
    settings = load_settings({"token": TOKEN, "workers": "3"}, {}, None)
    changed = settings.replace(api_url="http://127.0.0.1:1234/api/v10/", source="the built-in simulator")
    assert changed.api_url == "http://127.0.0.1:1234/api/v10"
    assert changed.source("api_url") == "the built-in simulator"
    assert (changed.workers, changed.source("workers")) == (3, "command line --workers")
    assert settings.api_url == "https://discord.com/api/v10"


def test_settings_when_replaced_with_a_bad_value_raises_masked() -> None:
    settings = load_settings(SIM, {}, None)
    with pytest.raises(SettingsError) as info:
        settings.replace(token="nope.nope")
    assert str(info.value) == (
        "invalid setting token: must be a Discord bot token (three dot-separated base64url parts, the first "
        "the bot's id, without 'Bot ') (got *** from the program)"
    )
    with pytest.raises(SettingsError, match="unknown setting 'porst'"):
        settings.replace(porst=1)


def test_settings_when_read_by_name_gives_the_attribute_and_refuses_unknown_names() -> None:
    settings = load_settings({"token": TOKEN, "workers": "3"}, {}, None)
    assert settings.value("workers") == 3
    assert settings.value("token") == TOKEN
    with pytest.raises(KeyError):
        settings.value("porst")
    assert hash(settings) == hash(settings.replace(workers=3))
