"""The click options built from the sections."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from shardrunner.settings import SETTINGS, SettingsError, load_settings
from shardrunner.settings.click import cli_options
from tests.settings.helpers import TOKEN, write_config

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
