"""``shardrunner reshard``: plan a reshard, run it with progress, or abort it."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import click

from shardrunner.cli.common import control, run_dir_of, run_dir_option
from shardrunner.settings.registry import to_shards

#: Phases after which the command has nothing more to wait for.
_SWITCHED = ("draining", "done")


def _shards(ctx: click.Context, param: click.Parameter, value: str) -> int | str:
    try:
        return to_shards(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("reshard")
@run_dir_option
@click.option(
    "--shards",
    default="auto",
    show_default=True,
    callback=_shards,
    metavar="N|auto",
    help="The new shard count; auto: the larger of /gateway/bot's recommendation and the count that "
    "brings the fill down to --reshard-target.",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and the checks, change nothing.")
@click.option(
    "--abort", is_flag=True, help="Abort the running reshard (before its switch): the old shards go on."
)
@click.option("--no-wait", is_flag=True, help="Start it and return; `shardrunner status` shows its progress.")
@click.option(
    "--timeout",
    default=0.0,
    show_default=True,
    help="Seconds to wait for the switch (0: as long as it takes); the reshard goes on in the cluster "
    "anyway.",
)
def reshard(
    run_dir: str | None, shards: int | str, dry_run: bool, abort: bool, no_wait: bool, timeout: float
) -> None:
    """Reshard the running bot without downtime: a new shard set identifies beside the old one
    (under the identify limit, behind every resume), its events are held back until every new shard
    is ready with all its guilds, then the bots switch to it in a few seconds; no event is lost or
    delivered twice. Prints the plan first (new count, identifies needed, session starts left, the
    time the identify limit allows); refuses, in one sentence, a count Discord would reject or a
    budget too small. Exits 0 once switched, 1 if refused or aborted."""
    path = run_dir_of(run_dir)
    if abort:
        result = control(path, "reshard", 30.0, abort=True)
        click.echo(str(result.get("message", "")) if isinstance(result, dict) else "aborted")
        return
    count = None if shards == "auto" else shards
    result = control(path, "reshard", 60.0, shards=count or "auto", dry_run=dry_run)
    if not isinstance(result, dict):
        raise click.ClickException("the cluster answered reshard with something that is not a plan")
    click.echo(plan_text(result.get("plan") or {}))
    message = str(result.get("message", ""))
    if dry_run or not result.get("started"):
        click.echo(message)
        if message.startswith("refused"):
            raise click.exceptions.Exit(1)
        return
    click.echo(message)
    if no_wait:
        return
    try:
        _follow(path, timeout)
    except KeyboardInterrupt:
        click.echo(
            "\nstopped following; the reshard goes on in the cluster (shardrunner status shows it, "
            "shardrunner reshard --abort aborts it before its switch)",
            err=True,
        )
        raise click.exceptions.Exit(130) from None


def plan_text(plan: Mapping[str, Any]) -> str:
    """The plan as ``reshard`` prints it."""
    if not plan:
        return "no plan"
    lines = [
        f"reshard {plan['platform']}: {plan['current']} -> {plan['count']} shards ({plan['reason']})",
        f"  guilds held:        {plan['keys']} (at most {plan['capacity']} per shard: fill "
        f"{plan['fill']:.0%} now, {plan['new_fill']:.0%} after)",
        f"  identifies needed:  {plan['starts_needed']}",
        f"  session starts left today: {plan['starts_remaining']} ({plan['reserve']} kept for reconnects)",
        f"  identify limit's time: at best {plan['seconds']:.0f} s",
    ]
    return "\n".join(lines)


def progress_text(r: Mapping[str, Any]) -> str:
    """One line of a reshard's progress (also what ``status`` prints)."""
    phase = r.get("phase", "?")
    elapsed = f"{float(r.get('elapsed_s') or 0):.0f} s"
    if phase == "warming":
        return (
            f"warming: {r['ready']}/{r['count']} new shards ready, {r['keys_pending']} guilds to come, "
            f"{r['withheld']} events held back, {elapsed} (at best {float(r['ideal_s']):.0f} s)"
        )
    if phase == "switching":
        return f"switching, step {r['step']}/4: {r['step_text']} ({elapsed})"
    if phase == "draining":
        return (
            f"switched to {r['count']} shards in {elapsed}; the old shards' workers drain what absent "
            "bots have not taken, then exit"
        )
    return str(r.get("outcome") or phase)


def _follow(path: Any, timeout: float) -> None:
    """Print a line each time the phase, the step or the count of ready new shards changes."""
    deadline = time.monotonic() + timeout if timeout > 0 else None
    last: tuple[object, ...] = ()
    while True:
        status = control(path, "status", 10.0)
        r = status.get("reshard") if isinstance(status, dict) else None
        if not r:
            raise click.ClickException("the cluster shows no reshard")
        headline = (r.get("phase"), r.get("step"), r.get("ready"))
        if headline != last:
            click.echo(progress_text(r))
            last = headline
        if r["phase"] in _SWITCHED:
            return
        if r["phase"] == "aborted":
            raise click.exceptions.Exit(1)
        if deadline is not None and time.monotonic() > deadline:
            click.echo(f"not switched after {timeout:g} s; the reshard goes on (shardrunner status)")
            raise click.exceptions.Exit(1)
        time.sleep(0.5)
