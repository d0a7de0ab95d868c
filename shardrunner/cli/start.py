"""``shardrunner start``: load the settings, wire ``--sim``, run the supervisor."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from shardrunner.cli.common import LOG_FORMAT, check_run_dir, run
from shardrunner.cluster import logs
from shardrunner.protocol.twitch import read_names
from shardrunner.rundir import RunDir
from shardrunner.settings import Settings, SettingsError, load_settings
from shardrunner.settings.click import cli_options

log = logging.getLogger("shardrunner.cli")


@click.command("start")
@cli_options
def start(**values: object) -> None:
    """Start the cluster: a supervisor that spawns worker processes, gives each a consecutive range
    of connections (Discord shards, Twitch chat connections), starts them under one identify queue
    and the platforms' budgets, and keeps them alive.

    Settings come from the command line, SHARDRUNNER_* environment variables and a TOML file
    (--config), in that order of precedence. `--sim` runs everything against the built-in simulators
    (Discord's, and Twitch's when Twitch runs: see --platforms), with no token. Stop with Ctrl-C,
    SIGTERM or `shardrunner stop`: the sessions are saved and a start within the resume window
    resumes them instead of identifying. SIGHUP or `shardrunner reload` replaces every worker
    without re-identifying.
    """
    config = values.pop("config", None)
    try:
        settings = load_settings(values, os.environ, config if isinstance(config, str) else None)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logs.configure(settings.log_level, settings.log_format, process="supervisor", text=LOG_FORMAT)
    for warning in exposed_secrets(settings):
        log.warning("%s", warning)
    check_run_dir(Path(settings.run_dir), create=True)
    if settings.sim:
        code, error = _run_with_simulator(settings)
    else:
        code, error = _run_supervisor(settings)
    if code:
        raise click.ClickException(error or f"the cluster stopped with status {code}")


def exposed_secrets(settings: Settings) -> list[str]:
    """A sentence for each secret that other users of the machine can read: given on the command
    line, where `ps` shows it (a Redis URL only when it holds a password), or in a file (the config
    file, the Twitch accounts file) that others may read."""
    from shardrunner.settings.sections import START_SECTIONS

    out = []
    files = {settings.twitch_accounts_file: "the Twitch accounts"} if settings.twitch_accounts_file else {}
    for setting in (s for section in START_SECTIONS for s in section.settings if s.secret):
        value = getattr(settings, setting.name, None)
        source = settings.source(setting.name)
        if not value:
            continue
        if setting.name == "coordinator":
            from shardrunner.identify.coordinator import redact

            if redact(str(value)) == value:
                continue  # no password in it
        if source.startswith("config file "):
            files.setdefault(source.removeprefix("config file "), f"{setting.name}")
        if source.startswith("command line"):
            out.append(
                f"{setting.option} was given on the command line, where `ps` shows it to every user of "
                f"this machine: give it in {setting.env_var} or the config file instead (docs/security.md)"
            )
    for path, what in files.items():
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            continue  # said where the file is read
        if mode & 0o077:
            out.append(f"{path} holds {what} and other users can read it (mode {mode:03o}): `chmod 600` it")
    return out


def _run_supervisor(settings: Settings) -> tuple[int, str | None]:
    from shardrunner.cluster.supervisor import Supervisor

    supervisor = Supervisor(settings)
    code = int(run(supervisor.run()))
    return code, supervisor.error


def _run_with_simulator(settings: Settings) -> tuple[int, str | None]:
    """Start the simulator children (Discord's; Twitch's when Twitch runs), run the supervisor
    against them, stop the children when it returns."""
    from shardrunner.cli.simchild import (
        SimulatorError,
        SimulatorProcess,
        simulator_command,
        start_simulator,
        twitch_simulator_command,
    )
    from shardrunner.settings.values import enabled_platforms
    from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

    run_dir = Path(settings.run_dir)
    _refuse_if_running(run_dir)
    platforms = enabled_platforms(settings)
    sims: list[SimulatorProcess] = []
    changes: dict[str, object] = {}
    try:
        if "discord" in platforms:
            sim = start_simulator(simulator_command(settings), run_dir)
            sims.append(sim)
            log.info("running against the built-in Discord simulator at %s", sim.url)
            changes.update(api_url=sim.api_url, token=settings.token or make_token(DEFAULT_BOT_ID))
        if "twitch" in platforms:
            names = _twitch_channels(settings)
            channels_file = None
            if names:
                channels_file = run_dir / "sim-twitch-channels.txt"
                channels_file.write_text("".join(f"{n}\n" for n in names))
            else:  # the simulator's own channels, chan0..chan19, are the ones read
                changes["twitch_channels"] = ",".join(f"chan{i}" for i in range(20))
            sim = start_simulator(
                twitch_simulator_command(settings, channels_file), run_dir, log_name="sim-twitch.log"
            )
            sims.append(sim)
            log.info("running against the built-in Twitch chat simulator at %s", sim.url)
            changes["twitch_url"] = sim.url
    except SimulatorError as exc:
        for sim in sims:
            sim.stop()
        raise click.ClickException(str(exc)) from None
    try:
        return _run_supervisor(settings.replace(source="the built-in simulator", **changes))
    finally:
        for sim in sims:
            sim.stop()


def _twitch_channels(settings: Settings) -> list[str]:
    """The channels configured (list and file), for the simulator to have them."""
    names = [c for c in settings.twitch_channels.split(",") if c]
    if settings.twitch_channels_file:
        try:
            text = Path(settings.twitch_channels_file).expanduser().read_text()
        except OSError as exc:
            raise click.ClickException(
                f"--twitch-channels-file: cannot read {settings.twitch_channels_file} ({exc.strerror})"
            ) from None
        names += [n.lstrip("#").lower() for n in read_names(text)]
    return sorted({n for n in names if n})


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
