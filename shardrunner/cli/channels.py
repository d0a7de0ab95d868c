"""``shardrunner channels add|remove|list``: change the Twitch channels of the running cluster."""

from __future__ import annotations

import click

from shardrunner.cli.common import control, run_dir_of, run_dir_option
from shardrunner.protocol.twitch import read_names


@click.group("channels")
def channels() -> None:
    """Change the Twitch channels the running cluster reads, or list them. Changes take effect at
    once (joins under the JOIN limit, parts) and are kept in the run dir for the next start."""


def _names(names: tuple[str, ...], from_file: str | None) -> list[str]:
    out = [n for arg in names for n in arg.split(",") if n.strip()]
    if from_file:
        with open(from_file) as f:
            out += read_names(f.read())
    if not out:
        raise click.UsageError("name at least one channel (or --file)")
    return out


@channels.command("add")
@run_dir_option
@click.option("--file", "from_file", type=click.Path(exists=True, dir_okay=False), help="A file of names.")
@click.argument("names", nargs=-1)
def add(run_dir: str | None, from_file: str | None, names: tuple[str, ...]) -> None:
    """Read these channels too (names with or without '#', separated by spaces or commas)."""
    result = control(run_dir_of(run_dir), "channels", 30.0, action="add", names=_names(names, from_file))
    added, already = result.get("added") or [], result.get("already") or []
    click.echo(f"added {len(added)} channels" + (f" ({len(already)} already read)" if already else ""))
    for name, conns in sorted((result.get("placed") or {}).items()):
        click.echo(f"  #{name}: {', '.join(conns)}")
    click.echo(f"{result.get('channels', '?')} channels in all")


@channels.command("remove")
@run_dir_option
@click.option("--file", "from_file", type=click.Path(exists=True, dir_okay=False), help="A file of names.")
@click.argument("names", nargs=-1)
def remove(run_dir: str | None, from_file: str | None, names: tuple[str, ...]) -> None:
    """Stop reading these channels (their connections part them)."""
    result = control(run_dir_of(run_dir), "channels", 30.0, action="remove", names=_names(names, from_file))
    removed, unknown = result.get("removed") or [], result.get("unknown") or []
    click.echo(f"removed {len(removed)} channels" + (f" ({len(unknown)} were not read)" if unknown else ""))
    click.echo(f"{result.get('channels', '?')} channels in all")


@channels.command("list")
@run_dir_option
def list_(run_dir: str | None) -> None:
    """Print the channels read now, one a line."""
    result = control(run_dir_of(run_dir), "channels", 10.0, action="list", names=[])
    for name in result.get("channels") or []:
        click.echo(name)
