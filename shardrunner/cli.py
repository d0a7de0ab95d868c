"""The ``shardrunner`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from shardrunner import __version__
from shardrunner.protocol.compression import Compression
from shardrunner.sim.discord.config import FAULT_KINDS


def _run(coro: object) -> Any:
    """Run a coroutine to the end on uvloop and return its result."""
    import uvloop

    return uvloop.run(coro)  # type: ignore[arg-type]


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Eager ``--config``: a TOML file's keys become the defaults of the command's other options."""
    if value is None:
        return
    import tomllib

    try:
        with open(value, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {value}: {exc.strerror}", param=param) from None
    except tomllib.TOMLDecodeError as exc:
        raise click.BadParameter(f"{value} is not valid TOML: {exc}", param=param) from None
    known = {p.name for p in ctx.command.params if p.name and p.name != "config"}
    defaults: dict[str, object] = {}
    for key, item in data.items():
        name = key.replace("-", "_")
        if name not in known:
            raise click.BadParameter(f"{value}: unknown setting {key!r}", param=param)
        # Lists in TOML stand for the comma-separated values the command line takes.
        defaults[name] = ",".join(map(str, item)) if isinstance(item, list) else item
    ctx.default_map = {**(ctx.default_map or {}), **defaults}


_PRIVILEGED = {"members": 1 << 1, "presences": 1 << 8, "message_content": 1 << 15}


def _privileged(value: str) -> int:
    names = [n.strip().lower() for n in value.split(",") if n.strip()]
    if names == ["none"]:
        return 0
    unknown = [n for n in names if n not in _PRIVILEGED]
    if unknown:
        raise click.BadParameter(
            f"{unknown[0]!r} is not one of members, presences, message_content, none",
            param_hint="--privileged-intents",
        )
    return sum(_PRIVILEGED[n] for n in set(names))


def _rate(value: str) -> float:
    if value.strip().lower() in ("max", "inf", "unlimited"):
        return math.inf
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'max'") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="shardrunner")
def main() -> None:
    """shardrunner keeps a chat bot's gateway connections (Discord shards) alive in their own
    processes and routes every event to the bot over ZeroMQ, so the bot can restart and deploy
    without reconnecting or losing events.

    Run `shardrunner COMMAND --help` for the options of each command.
    """


@main.group()
def sim() -> None:
    """Local simulators of the platforms' gateways, for tests and benchmarks without a network."""


@sim.command("discord")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8900,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port for REST, gateway and admin API (0: any free port, printed at start).",
)
@click.option(
    "--shards",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Recommended shard count (/gateway/bot); guilds are laid out for it.",
)
@click.option(
    "--guilds-per-shard",
    default=10,
    show_default=True,
    type=click.IntRange(0),
    help="Guilds each of --shards shards receives (over 2500 on a shard closes 4011).",
)
@click.option(
    "--min-members",
    default=2,
    show_default=True,
    type=click.IntRange(1),
    help="Smallest guild size; sizes are drawn log-uniformly between min and max.",
)
@click.option(
    "--max-members",
    default=1000,
    show_default=True,
    type=click.IntRange(1),
    help="Largest guild size (9000 members make a GUILD_CREATE of about 1 MB).",
)
@click.option(
    "--rate",
    default="10",
    show_default=True,
    help="Dispatches per second per shard; 0 stops the stream; 'max' in replay mode sends "
    "the script as fast as the socket takes it.",
)
@click.option(
    "--tick",
    default=0.01,
    show_default=True,
    type=float,
    help="Seconds between ticks of the dispatch generator and of a paced replay: smaller ticks "
    "send smaller, more even bursts.",
)
@click.option(
    "--record-sends",
    is_flag=True,
    help="Record when each dispatch was written (GET /_sim/sends), for latency measurements.",
)
@click.option(
    "--mix",
    default="",
    help="Dispatch mix as NAME=WEIGHT,... (default: a realistic mix dominated by MESSAGE_CREATE).",
)
@click.option(
    "--dm-ratio",
    default=0.02,
    show_default=True,
    type=float,
    help="Share of DM-capable dispatches sent as direct messages (they go to shard 0).",
)
@click.option(
    "--max-concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="session_start_limit.max_concurrency: identify buckets (shard_id % K).",
)
@click.option(
    "--identify-window",
    default=5.0,
    show_default=True,
    type=float,
    help="Seconds between two identifies of one bucket (Discord: 5); lower it to run tests fast.",
)
@click.option(
    "--session-start-total",
    default=1000,
    show_default=True,
    type=click.IntRange(0),
    help="session_start_limit.total.",
)
@click.option(
    "--session-start-remaining",
    default=None,
    type=click.IntRange(0),
    help="session_start_limit.remaining at start (default: the total).",
)
@click.option(
    "--session-start-reset-after",
    default=86400.0,
    show_default=True,
    type=float,
    help="Seconds until remaining resets to the total.",
)
@click.option(
    "--heartbeat-interval",
    default=41250,
    show_default=True,
    type=click.IntRange(10),
    help="heartbeat_interval in HELLO, in milliseconds.",
)
@click.option(
    "--heartbeat-request-interval",
    default=60.0,
    show_default=True,
    type=float,
    help="Seconds between op 1 heartbeat requests to each connection (0: never).",
)
@click.option(
    "--heartbeat-timeout-factor",
    default=1.5,
    show_default=True,
    type=float,
    help="Close with 4009 after interval x factor without a heartbeat.",
)
@click.option(
    "--resume-window",
    default=180.0,
    show_default=True,
    type=float,
    help="Seconds a disconnected session stays resumable.",
)
@click.option(
    "--replay-buffer",
    default=10000,
    show_default=True,
    type=click.IntRange(1),
    help="Dispatches kept per session for RESUME.",
)
@click.option(
    "--token",
    default=None,
    envvar="SHARDRUNNER_SIM_TOKEN",
    help="Accept only this token (default: any well-formed bot token). Never printed.",
)
@click.option(
    "--resume-gateway-url",
    default=None,
    help="resume_gateway_url to advertise in READY (default: this server).",
)
@click.option(
    "--gateway-url",
    default=None,
    help="Gateway URL to advertise in /gateway and /gateway/bot (default: this server).",
)
@click.option(
    "--privileged-intents",
    default="members,presences,message_content",
    show_default=True,
    help="Privileged intents the application may use (any of members, presences, "
    "message_content, or none); asking for others closes 4014.",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Seed of every random choice.")
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=float,
    help="Random faults per connection per minute.",
)
@click.option(
    "--faults",
    default=",".join(FAULT_KINDS),
    show_default=True,
    help="Kinds of random fault to draw from.",
)
@click.option(
    "--replay",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Replay mode: this many dispatches per shard, compressed before the server starts.",
)
@click.option(
    "--replay-compress",
    default="zlib-stream",
    show_default=True,
    help="Compressions to prepare in replay mode: any of zlib-stream, zstd-stream, none.",
)
@click.option(
    "--replay-segment",
    default=256,
    show_default=True,
    type=click.IntRange(1),
    help="Dispatches per independently compressed segment in replay mode.",
)
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    is_eager=True,
    expose_value=False,
    callback=_load_config,
    help="TOML file of settings (keys are the option names); "
    "options on the command line override it. See configs/sim-discord.toml.",
)
def sim_discord(**options: object) -> None:
    """Serve a simulated Discord Gateway v10 and REST API on one port.

    REST under /api/v10 (gateway, gateway/bot, users/@me, applications/@me), the gateway at / with
    zlib-stream, zstd-stream or no compression, and an admin API: GET /_sim/stats, POST /_sim/fault,
    POST /_sim/config. docs/simulator.md describes every option and the admin API.
    """
    from shardrunner.sim.discord.config import ConfigError, SimConfig, parse_mix

    logging.basicConfig(
        level=str(options.pop("log_level")).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        compress = tuple(
            Compression.from_query(c.strip())
            for c in str(options.pop("replay_compress")).split(",")
            if c.strip()
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--replay-compress") from None
    options["heartbeat_interval_ms"] = options.pop("heartbeat_interval")
    options["privileged_intents"] = _privileged(str(options["privileged_intents"]))
    options["rate"] = _rate(str(options["rate"]))
    options["faults"] = tuple(f.strip() for f in str(options["faults"]).split(",") if f.strip())
    try:
        options["mix"] = parse_mix(str(options["mix"]))
        config = SimConfig(replay_compress=compress, **options)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        _run(_serve_sim(config))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {config.port} on {config.host} is already in use: "
                "stop what uses it or pass another --port"
            ) from None
        raise click.ClickException(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from None


async def _serve_sim(config: object) -> None:
    from shardrunner.sim.discord.config import SimConfig
    from shardrunner.sim.discord.replay import prepare_scripts
    from shardrunner.sim.discord.server import Simulator

    assert isinstance(config, SimConfig)
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
    sim = Simulator(config, scripts)
    await sim.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    click.echo(f"Discord gateway simulator listening on {sim.url} (gateway {sim.gateway_url})", err=False)
    sys.stdout.flush()
    try:
        await stop.wait()
    finally:
        await sim.stop()


# -- the cluster --------------------------------------------------------------------------------
from shardrunner.cluster.settings import cli_options  # noqa: E402  (the registry builds the options)


@main.command("start")
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
    import os

    from shardrunner.cluster.settings import SettingsError, load_settings

    config = values.pop("config", None)
    try:
        settings = load_settings(values, os.environ, config if isinstance(config, str) else None)
    except SettingsError as exc:
        raise click.UsageError(str(exc)) from None
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from shardrunner.cluster.supervisor import Supervisor

    supervisor = Supervisor(settings)
    code = int(_run(supervisor.run()))
    if code:
        raise click.ClickException(supervisor.error or f"the cluster stopped with status {code}")


def _run_dir(option: str | None) -> Path:
    from shardrunner.cluster.settings import resolve_run_dir

    return resolve_run_dir(option)


_run_dir_option = click.option(
    "--run-dir",
    default=None,
    help="Run directory of the cluster (default: the one `shardrunner start` uses; env SHARDRUNNER_RUN_DIR).",
)


def _control(run_dir: str | None, command: str, timeout: float) -> object:
    from shardrunner.control import CommandError, call_sync

    try:
        return call_sync(_run_dir(run_dir), command, timeout=timeout)
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None


@main.command("status")
@_run_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON, for scripts.")
def status(run_dir: str | None, as_json: bool) -> None:
    """Show the running cluster: workers (pid, CPU, RSS, shards, state) and shards (state, heartbeat
    latency, events/s, guilds, last resume)."""
    result = _control(run_dir, "status", 10.0)
    if as_json:
        import msgspec

        click.echo(msgspec.json.format(msgspec.json.encode(result)))
        return
    assert isinstance(result, dict)
    click.echo(_status_text(result))


@main.command("reload")
@_run_dir_option
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the reload to finish.")
def reload(run_dir: str | None, timeout: float) -> None:
    """Replace every worker, one at a time, without re-identifying (the same as SIGHUP)."""
    result = _control(run_dir, "reload", timeout)
    message = str(result.get("message", "")) if isinstance(result, dict) else ""
    click.echo(message)
    if not message.startswith("reload done"):
        raise click.exceptions.Exit(1)


@main.command("stop")
@_run_dir_option
def stop(run_dir: str | None) -> None:
    """Stop the cluster: shards close resumably and their sessions are saved for the next start."""
    result = _control(run_dir, "stop", 10.0)
    click.echo(result.get("message", "stopping") if isinstance(result, dict) else "stopping")


@main.command("tail")
@_run_dir_option
@click.option(
    "--group",
    default=None,
    help="Join this consumer group (durable: it keeps queueing while nobody consumes). Default: a "
    "group of its own that ends when tail exits, so it takes nothing from the bots and leaves nothing.",
)
@click.option("--events", default=None, help="Comma-separated event names (default: every event).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line: shard, seq, t, guild_id, d.")
@click.option("--count", default=0, type=click.IntRange(0), help="Stop after this many events (0: never).")
def tail(run_dir: str | None, group: str | None, events: str | None, as_json: bool, count: int) -> None:
    """Print the cluster's events as they come, one line each (a consumer on the command line).

    By default it watches through a group of its own, which disappears when it exits; with --group
    it joins that group like any bot (and takes a share of its events).
    """
    names = [n.strip().upper() for n in events.split(",") if n.strip()] if events else None
    with contextlib.suppress(KeyboardInterrupt):
        _run(_tail(_run_dir(run_dir), group, names, as_json, count))


async def _tail(run_dir: Path, group: str | None, names: list[str] | None, as_json: bool, count: int) -> None:
    import msgspec

    from shardrunner.client import Client, ClientError

    try:
        import uuid

        ephemeral = group is None
        name = group or f"tail-{uuid.uuid4().hex[:8]}"
        client = Client(run_dir, group=name, events=names, durable=not ephemeral)
        await client.start()
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    out = sys.stdout
    seen = 0
    try:
        async for event in client:
            if as_json:
                line = msgspec.json.encode(
                    {
                        "shard": event.shard,
                        "seq": event.seq,
                        "t": event.name,
                        "guild_id": event.guild_id,
                        "d": msgspec.Raw(event.raw),
                    }
                ).decode()
            else:
                guild = "-" if event.guild_id is None else str(event.guild_id)
                size = len(event.raw)
                line = f"shard {event.shard:>3} seq {event.seq:>8} {event.name:<24} guild {guild} {size} B"
            out.write(line + "\n")
            out.flush()
            seen += 1
            if count and seen >= count:
                break
    finally:
        await client.close()


def _status_text(status: dict[str, object]) -> str:
    sup = status["supervisor"]
    assert isinstance(sup, dict)
    lines = [
        f"cluster {sup['state']}: {sup['num_shards']} shards, supervisor pid {sup['pid']}, "
        f"up {_duration(float(sup['uptime_s']))}, gateway {sup['gateway_url']}"
    ]
    if sup.get("error"):
        lines.append(f"error: {sup['error']}")
    lines.append("")
    lines.append(f"{'worker':>6} {'pid':>8} {'cpu':>6} {'rss':>9} {'shards':>9}  state")
    for w in status["workers"]:  # type: ignore[attr-defined]
        cpu = "-" if w["cpu_percent"] is None else f"{w['cpu_percent']:.0f}%"
        rss = "-" if w["rss"] is None else f"{w['rss'] / 1048576:.0f} MiB"
        state = w["state"] + (", ready" if w["ready"] else "")
        lines.append(f"{w['slot']:>6} {w['pid']:>8} {cpu:>6} {rss:>9} {w['shards']:>9}  {state}")
    lines.append("")
    lines.append(
        f"{'shard':>6} {'worker':>6} {'state':<13} {'latency':>8} {'events/s':>9} "
        f"{'guilds':>7} {'resumes':>8}  last resume"
    )
    for s in status["shards"]:  # type: ignore[attr-defined]
        latency = "-" if s["latency_ms"] is None else f"{s['latency_ms']:.0f} ms"
        last = "-" if s["last_resume_ago_s"] is None else f"{_duration(s['last_resume_ago_s'])} ago"
        lines.append(
            f"{s['id']:>6} {s['worker']:>6} {s['state']:<13} {latency:>8} {s['events_per_s']:>9.1f} "
            f"{s['guilds']:>7} {s['resumes']:>8}  {last}"
        )
    groups = status.get("groups") or []
    if groups:
        lines.append("")
        lines.append(
            f"{'group':<16} {'members':>7} {'queued':>8} {'queued MiB':>10} {'in flight':>9} {'dropped':>8}"
        )
        for g in groups:  # type: ignore[attr-defined]
            mib = g["held_bytes"] / 1048576
            lines.append(
                f"{g['group']:<16} {g['members']:>7} {g['held_events']:>8} {mib:>10.1f} "
                f"{g['inflight']:>9} {g['dropped']:>8}"
            )
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


if __name__ == "__main__":  # pragma: no cover
    main()
