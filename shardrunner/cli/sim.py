"""``shardrunner sim discord``: serve the Discord simulator; its options come from the registry's
``sim.discord`` section."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

import click

from shardrunner.cli.common import LOG_FORMAT, run
from shardrunner.settings import SIM_DISCORD_SECTIONS, SIM_TWITCH_SECTIONS, SettingsError
from shardrunner.settings.click import options
from shardrunner.sim.discord.config import CONFIG_ENV, ConfigError, SimConfig, load_sim_config

if TYPE_CHECKING:
    from shardrunner.sim.twitch.config import TwitchSimConfig


@click.group("sim")
def sim() -> None:
    """Local simulators of the platforms' gateways, for tests and benchmarks without a network."""


@sim.command("discord")
@options(
    SIM_DISCORD_SECTIONS,
    config_help="TOML file of settings (keys are the option names, at the top level or in "
    "[sim.discord]; see configs/sim-discord.toml); the environment and the command line override it",
    config_env=CONFIG_ENV,
)
def sim_discord(**values: object) -> None:
    """Serve a simulated Discord Gateway v10 and REST API on one port.

    REST under /api/v10 (gateway, gateway/bot, users/@me, applications/@me), the gateway at / with
    zlib-stream, zstd-stream or no compression, and an admin API: GET /_sim/stats, POST /_sim/fault,
    POST /_sim/config, GET /_sim/sends, GET and POST /_sim/guilds (guilds joining and leaving), GET
    /_sim/dispatches (the dispatch id of every seq, with --track-dispatches). docs/simulator.md
    describes every option and the admin API.
    """
    config_path = values.pop("config", None)
    try:
        config, resolved = load_sim_config(
            values, os.environ, config_path if isinstance(config_path, str) else None
        )
    except (SettingsError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=str(resolved.values["log_level"]).upper(), format=LOG_FORMAT)
    try:
        run(_serve(config))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {config.port} on {config.host} is already in use: "
                "stop what uses it or pass another --port"
            ) from None
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None


async def _serve(config: SimConfig) -> None:
    from shardrunner.sim.discord.replay import prepare_scripts
    from shardrunner.sim.discord.server import Simulator

    scripts = {}
    if config.replay:
        started = time.monotonic()

        def progress(done: int, total: int) -> None:
            click.echo(f"preparing replay scripts: {done}/{total}", err=True)

        loop = asyncio.get_running_loop()
        scripts = await loop.run_in_executor(None, prepare_scripts, config, progress)
        size = sum(s.nbytes for s in scripts.values())
        click.echo(
            f"prepared {len(scripts)} scripts of {config.replay} dispatches "
            f"({size / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s",
            err=True,
        )
    simulator = Simulator(config, scripts)
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(f"Discord gateway simulator listening on {simulator.url} (gateway {simulator.gateway_url})")
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await simulator.stop()


@sim.command("twitch")
@options(
    SIM_TWITCH_SECTIONS,
    config_help="TOML file of settings (keys are the option names, at the top level or in "
    "[sim.twitch]; see configs/sim-twitch.toml); the environment and the command line override it",
    config_env="SHARDRUNNER_SIM_TWITCH_CONFIG",
)
def sim_twitch(**values: object) -> None:
    """Serve a simulated Twitch chat server: IRC over WebSocket at / on --port and plain IRC over TCP
    on --irc-port.

    CAP/PASS/NICK, the welcome, anonymous justinfan readers, JOIN replies, PING/PONG, generated chat
    with realistic tags, the per-account limits, and an admin API on --port: GET /_sim/stats, POST
    /_sim/fault, POST /_sim/config, POST /_sim/channels. docs/simulator-twitch.md describes every
    option and the admin API.
    """
    from shardrunner.sim.twitch.config import ConfigError as TwitchConfigError
    from shardrunner.sim.twitch.config import load_twitch_config

    config_path = values.pop("config", None)
    try:
        config, resolved = load_twitch_config(
            values, os.environ, config_path if isinstance(config_path, str) else None
        )
    except (SettingsError, TwitchConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(level=str(resolved.values["log_level"]).upper(), format=LOG_FORMAT)
    try:
        run(_serve_twitch(config))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {config.host}: {exc.strerror}") from None


async def _serve_twitch(config: TwitchSimConfig) -> None:
    from shardrunner.sim.twitch.server import TwitchSimulator
    from shardrunner.sim.twitch.tls import TlsUnavailable

    simulator = TwitchSimulator(config)
    try:
        await simulator.start()
    except TlsUnavailable as exc:
        await simulator.stop()
        raise click.ClickException(str(exc)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(
        f"Twitch chat simulator listening on {simulator.ws_url} (WebSocket, admin {simulator.url}/_sim/) "
        f"and {config.host}:{simulator.irc_port} (IRC over TCP)"
        + (
            f" and {config.host}:{simulator.irc_tls_port} (IRC over TLS, certificate {simulator.tls_cert})"
            if simulator.irc_tls_port is not None
            else ""
        )
    )
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await simulator.stop()
