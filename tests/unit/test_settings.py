"""The settings registry: precedence, parsing, error sentences, secrets, the example config and the CLI."""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
from pathlib import Path

import click
import psutil
import pytest
from click.testing import CliRunner

from shardrunner.cluster.settings import (
    SETTINGS,
    Setting,
    Settings,
    SettingsError,
    cli_options,
    load_settings,
)
from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import ALL_INTENTS, PRIVILEGED_INTENTS

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "shardrunner.toml"
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.secret-part"
SIM = {"sim": True}


def write_config(tmp_path: Path, text: str) -> str:
    """Write ``text`` to a TOML file under ``tmp_path`` and return its path."""
    path = tmp_path / "shardrunner.toml"
    path.write_text(text)
    return str(path)


def load_error(cli: dict[str, object], env: dict[str, str], config: str | None = None) -> str:
    """The message of the SettingsError that ``load_settings`` raises for these sources."""
    with pytest.raises(SettingsError) as info:
        load_settings(cli, env, config)
    message = str(info.value)
    assert "\n" not in message
    assert ". " not in message.replace("e.g. ", ""), f"more than one sentence: {message}"
    return message


# -- the registry -------------------------------------------------------------------------------


def test_settings_when_compared_with_registry_have_one_attribute_per_setting_in_order() -> None:
    attributes = [f.name for f in dataclasses.fields(Settings) if not f.name.startswith("_")]
    assert attributes == [s.name for s in SETTINGS]


def test_setting_when_named_derives_env_var_and_option() -> None:
    setting = next(s for s in SETTINGS if s.name == "run_dir")
    assert setting.env_var == "SHARDRUNNER_RUN_DIR"
    assert setting.option == "--run-dir"


def test_setting_when_name_is_not_snake_case_raises() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Setting("RunDir", str, "x", "help")


def test_setting_when_default_is_computed_without_default_text_raises() -> None:
    with pytest.raises(ValueError, match="default_text"):
        Setting("thing", str, lambda: "x", "help")


# -- precedence and sources ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "expected", "source"),
    [
        (("cli", "env", "file"), 4, "command line --workers"),
        (("env", "file"), 3, "environment variable SHARDRUNNER_WORKERS"),
        (("file",), 2, "config file {path}"),
        ((), psutil.cpu_count(logical=True) or 1, "default"),
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
    assert settings.workers == (psutil.cpu_count(logical=True) or 1)
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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sim = 1",
            "invalid setting sim: must be one of 1, true, yes, on, 0, false, no, off (got 1 from {where})",
        ),
        (
            'sim = "perhaps"',
            "invalid setting sim: must be one of 1, true, yes, on, 0, false, no, off "
            "(got perhaps from {where})",
        ),
        (
            "sim = true\nworkers = 1.5",
            "invalid setting workers: must be a whole number (got 1.5 from {where})",
        ),
        (
            "sim = true\nworkers = true",
            "invalid setting workers: must be a whole number (got true from {where})",
        ),
        (
            "sim = true\nhung-after = [1]",
            "invalid setting hung_after: must be a number (got [1] from {where})",
        ),
        ("sim = true\napi-url = 5", "invalid setting api_url: must be a string (got 5 from {where})"),
    ],
)
def test_load_settings_when_toml_value_is_invalid_names_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text + "\n")
    assert load_error({}, {}, path) == message.format(where=f"config file {path}")


def test_load_settings_when_toml_key_is_unknown_names_key_and_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nporst = 8900\n")
    assert load_error({}, {}, path) == f"unknown setting 'porst' in config file {path}"


def test_load_settings_when_toml_key_is_misspelt_suggests_the_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nworkrs = 2\n")
    assert (
        load_error({}, {}, path)
        == f"unknown setting 'workrs' in config file {path} (did you mean 'workers'?)"
    )


def test_load_settings_when_toml_gives_a_setting_twice_raises(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'sim = true\nrun-dir = "/a"\nrun_dir = "/b"\n')
    assert load_error({}, {}, path) == (
        f"setting run_dir is given twice in config file {path} (as 'run-dir' and 'run_dir')"
    )


def test_load_settings_when_toml_is_invalid_raises_one_sentence(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nworkers = \n")
    message = load_error({}, {}, path)
    assert message.startswith(f"config file {path} is not valid TOML: ")
    assert "line 2" in message


def test_load_settings_when_toml_is_not_utf8_raises_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'log-level = "d\xe9bug"\n')
    assert load_error({}, {}, str(path)) == f"config file {path} is not valid TOML: it is not UTF-8 text"


def test_load_settings_when_config_file_is_missing_raises_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert load_error({}, {}, str(path)) == f"cannot read config file {path}: No such file or directory"


def test_load_settings_when_env_names_a_missing_config_says_which_variable(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert load_error({}, {"SHARDRUNNER_CONFIG": str(path)}) == (
        f"cannot read config file {path} (named by environment variable SHARDRUNNER_CONFIG): "
        "No such file or directory"
    )


# -- the token ----------------------------------------------------------------------------------


def test_load_settings_when_no_token_and_no_sim_raises_what_to_do() -> None:
    assert load_error({}, {}) == (
        "setting token is required: pass --token, set SHARDRUNNER_TOKEN or put token in the config file "
        "(or use --sim)"
    )


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


# -- the example config -------------------------------------------------------------------------


def test_example_config_when_loaded_as_is_runs_on_the_simulator() -> None:
    settings = load_settings({}, {}, str(EXAMPLE))
    assert settings.sim is True
    assert settings.source("sim") == f"config file {EXAMPLE}"


def test_example_config_when_token_given_in_env_loads() -> None:
    settings = load_settings({"sim": False}, {"SHARDRUNNER_TOKEN": TOKEN}, str(EXAMPLE))
    assert settings.token == TOKEN


def test_example_config_when_read_mentions_every_setting() -> None:
    text = EXAMPLE.read_text()
    for setting in SETTINGS:
        key = setting.name.replace("_", "-")
        assert re.search(rf"^#? ?{re.escape(key)} = ", text, re.MULTILINE), f"{key} missing from {EXAMPLE}"


def test_example_config_when_loaded_sets_nothing_but_sim_away_from_the_default() -> None:
    example = load_settings({}, {}, str(EXAMPLE))
    defaults = load_settings(SIM, {}, None)
    assert dataclasses.replace(example, _sources={}) == dataclasses.replace(defaults, _sources={})


# -- the command line ---------------------------------------------------------------------------


@click.command()
@cli_options
def start(**options: object) -> None:
    """A stand-in for ``shardrunner start``: prints the settings it would run with."""
    try:
        config = options.pop("config")
        assert config is None or isinstance(config, str)
        settings = load_settings(options, {}, config)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(repr(settings))
    click.echo(settings.source("workers"))
    click.echo(settings.source("sim"))


def test_cli_options_when_options_passed_reach_load_settings() -> None:
    result = CliRunner().invoke(start, ["--workers", "3", "--no-sim", "--token", TOKEN, "--shards", "auto"])
    assert result.exit_code == 0, result.output
    assert "workers=3," in result.output
    assert "sim=False" in result.output
    assert "command line --workers" in result.output
    assert "command line --no-sim" in result.output
    assert TOKEN not in result.output


def test_cli_options_when_options_not_passed_gives_none() -> None:
    seen: dict[str, object] = {}

    @click.command()
    @cli_options
    def probe(**options: object) -> None:
        seen.update(options)

    result = CliRunner().invoke(probe, ["--sim"])
    assert result.exit_code == 0, result.output
    assert seen["sim"] is True
    assert seen["config"] is None
    assert all(seen[s.name] is None for s in SETTINGS if s.name != "sim")


def test_cli_options_when_config_given_reads_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nworkers = 5\n")
    result = CliRunner().invoke(start, ["--config", path])
    assert result.exit_code == 0, result.output
    assert "workers=5," in result.output
    assert f"config file {path}" in result.output


def test_cli_options_when_value_is_invalid_fails_with_the_sentence() -> None:
    result = CliRunner().invoke(start, ["--sim", "--workers", "0"])
    assert result.exit_code == 2
    assert "invalid setting workers: must be at least 1 (got 0 from command line --workers)" in result.output


def test_cli_options_when_help_shown_mentions_default_and_env_var() -> None:
    result = CliRunner().invoke(start, ["--help"], terminal_width=200)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    workers = next(line for line in lines if line.strip().startswith("--workers"))
    assert "[default: one per CPU core; env SHARDRUNNER_WORKERS]" in workers
    assert "--sim / --no-sim" in result.output
    assert "--config FILE" in result.output
    for setting in SETTINGS:
        assert setting.env_var in result.output
