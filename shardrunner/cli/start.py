"""``shardrunner start``: load the settings, wire ``--sim``, run the supervisor."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from shardrunner.cli.common import LOG_FORMAT, check_run_dir, run
from shardrunner.rundir import RunDir
from shardrunner.settings import Settings, SettingsError, load_settings
from shardrunner.settings.click import cli_options

log = logging.getLogger("shardrunner.cli")


@click.command("start")
@cli_options
def start(**values: object) -> None:
    """Start the cluster: a supervisor that spawns worker processes, gives each a consecutive range
    of shards, starts them under one identify queue and keeps them alive.

    Settings come from the command line, SHARDRUNNER_* environment variables and a TOML file
    (--config), in that order of precedence. `--sim` runs everything against the built-in Discord
    simulator, with no token. Stop with Ctrl-C, SIGTERM or `shardrunner stop`: the sessions are saved
    and a start within the resume window resumes them instead of identifying. SIGHUP or
    `shardrunner reload` replaces every worker without re-identifying.
    """
    config = values.pop("config", None)
    try:
        settings = load_settings(values, os.environ, config if isinstance(config, str) else None)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=settings.log_level.upper(), format=LOG_FORMAT)
    check_run_dir(Path(settings.run_dir), create=True)
    if settings.sim:
        code, error = _run_with_simulator(settings)
    else:
        code, error = _run_supervisor(settings)
    if code:
        raise click.ClickException(error or f"the cluster stopped with status {code}")


def _run_supervisor(settings: Settings) -> tuple[int, str | None]:
    from shardrunner.cluster.supervisor import Supervisor

    supervisor = Supervisor(settings)
    code = int(run(supervisor.run()))
    return code, supervisor.error


def _run_with_simulator(settings: Settings) -> tuple[int, str | None]:
    """Start the simulator child, run the supervisor against it, stop the child when it returns."""
    from shardrunner.cli.simchild import SimulatorError, simulator_command, start_simulator
    from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

    _refuse_if_running(Path(settings.run_dir))
    try:
        sim = start_simulator(simulator_command(settings), Path(settings.run_dir))
    except SimulatorError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        log.info("running against the built-in simulator at %s", sim.url)
        changed = settings.replace(
            source="the built-in simulator",
            api_url=sim.api_url,
            token=settings.token or make_token(DEFAULT_BOT_ID),
        )
        return _run_supervisor(changed)
    finally:
        sim.stop()


def _refuse_if_running(run_dir: Path) -> None:
    # The supervisor refuses a second start itself, but the simulator would be started (and its log
    # appended to the running cluster's) before that: refuse first, touching nothing.
    from shardrunner.cluster.supervisor.claim import running_cluster

    pid = running_cluster(RunDir(run_dir))
    if pid is not None:
        raise click.ClickException(
            f"a cluster is already running in {run_dir} (pid {pid}): "
            "stop it with `shardrunner stop` or pass another --run-dir"
        )
