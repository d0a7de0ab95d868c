"""``shardrunner tail``: print the cluster's events as they come (a consumer on the command line)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from shardrunner.cli.common import remote_options, run, run_dir_of, run_dir_option
from shardrunner.protocol import twitch
from shardrunner.protocol.discord import DISPATCH_EVENTS

if TYPE_CHECKING:
    from shardrunner.client import ClientEvent


def event_names(text: str | None) -> list[str] | None:
    """``--events`` as a list of names (None: every event); BadParameter names the unknown ones, so
    that a typo fails at once instead of waiting for ever for an event that never comes."""
    if not text:
        return None
    names = [n.strip().upper() for n in text.split(",") if n.strip()]
    known = DISPATCH_EVENTS | twitch.EVENTS
    unknown = sorted(set(names) - known)
    if unknown:
        raise click.BadParameter(
            f"unknown event {', '.join(map(repr, unknown))}; known: Discord's "
            f"{', '.join(sorted(DISPATCH_EVENTS))}; Twitch's {', '.join(sorted(twitch.EVENTS))}",
            param_hint="--events",
        )
    return names or None


@click.command("tail")
@run_dir_option
@click.option(
    "--group",
    default=None,
    help="Join this consumer group (durable: it keeps queueing while nobody consumes). Default: a "
    "group of its own that ends when tail exits, so it takes nothing from the bots and leaves nothing.",
)
@click.option("--events", default=None, help="Comma-separated event names (default: every event).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON object per line: conn, session, seq, t, guild_id, key, d (Twitch: the parsed line).",
)
@click.option("--count", default=0, type=click.IntRange(0), help="Stop after this many events (0: never).")
@remote_options
def tail(
    run_dir: str | None,
    group: str | None,
    events: str | None,
    as_json: bool,
    count: int,
    control: str | None,
    server_key: str | None,
    key: str | None,
) -> None:
    """Print the cluster's events as they come, one line each (a consumer on the command line).

    By default it watches through a group of its own, which disappears when it exits; with --group
    it joins that group like any bot (and takes a share of its events). With --control, from the
    hosts of a cluster elsewhere (over TCP with CURVE).
    """
    from shardrunner.control import CommandError, check_running

    names = event_names(events)
    path = run_dir_of(None if control else run_dir)
    if not control:
        try:
            check_running(path)  # at once, rather than a client waiting for a cluster that is not there
        except CommandError as exc:
            raise click.ClickException(str(exc)) from None
    with contextlib.suppress(KeyboardInterrupt):
        run(_tail(path, group, names, as_json, count, (control, server_key, key)))


async def _tail(
    run_dir: Path,
    group: str | None,
    names: list[str] | None,
    as_json: bool,
    count: int,
    remote: tuple[str | None, str | None, str | None] = (None, None, None),
) -> None:
    import uuid

    from shardrunner.client import Client, ClientError

    ephemeral = group is None
    name = group or f"tail-{uuid.uuid4().hex[:8]}"
    try:
        control, server_key, key = remote
        client = Client(
            run_dir,
            group=name,
            events=names,
            durable=not ephemeral,
            control=control,
            server_key=server_key,
            key=key,
        )
        await client.start()
    except ClientError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot reach the cluster in {run_dir}: {exc.strerror or exc}") from None
    seen = 0
    try:
        async for event in client:
            write_event(sys.stdout, event, as_json)
            seen += 1
            if count and seen >= count:
                break
    finally:
        await client.close()


def format_event(event: ClientEvent, as_json: bool) -> str:
    """One line for ``event``: a JSON object (``--json``) or a human line."""
    if as_json:
        import msgspec

        return msgspec.json.encode(
            {
                "conn": str(event.conn),
                "shard": event.shard,
                "session": event.session,
                "seq": event.seq,
                "t": event.name,
                "guild_id": event.guild_id,
                "key": event.key,
                # A dispatch without a body (RESUMED may carry none) is JSON null, not nothing; a
                # Twitch line is given parsed.
                "d": event.data if event.conn.platform == "twitch" else msgspec.Raw(event.raw or b"null"),
            }
        ).decode()
    key = "-" if event.key is None else str(event.key)
    if event.conn.platform == "twitch":
        data = event.data
        user = (data.get("prefix") or "").partition("!")[0]
        text = event.text
        said = f" {user}: {text}" if text is not None and user else ""
        return f"{event.conn!s:<14} seq {event.seq:>8} {event.name:<12} #{key}{said}"
    return f"{event.conn!s:<14} seq {event.seq:>8} {event.name:<24} guild {key} {len(event.raw)} B"


def write_event(out: TextIO, event: ClientEvent, as_json: bool) -> None:
    out.write(format_event(event, as_json) + "\n")
    out.flush()
