"""``shardrunner status``, ``reload`` and ``stop``: one control call each (``shardrunner.control``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from shardrunner.cli.common import control as _local
from shardrunner.cli.common import remote_control, remote_options, run_dir_of, run_dir_option


@click.command("status")
@run_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON, for scripts.")
@click.option(
    "--all", "every_host", is_flag=True, help="With several hosts: every host, and every block's lease."
)
@remote_options
def status(
    run_dir: str | None,
    as_json: bool,
    every_host: bool,
    control: str | None,
    server_key: str | None,
    key: str | None,
) -> None:
    """Show the running cluster: workers (pid, CPU, RSS, connections, state) and connections (state,
    heartbeat latency, events/s, routing keys, last resume); with several hosts (--coordinator) this
    host's place among them, and with --all every host and every lease. With --control, from a host
    elsewhere."""
    if control:
        result = remote_control(control, server_key, key, "status", 10.0)
    else:
        result = _local(run_dir_of(run_dir), "status", 10.0)
    if as_json:
        import msgspec

        click.echo(msgspec.json.format(msgspec.json.encode(result)))
        return
    if not isinstance(result, dict):
        raise click.ClickException("the cluster answered status with something that is not a status")
    click.echo(status_text(result, every_host=every_host))


@click.command("reload")
@run_dir_option
@click.option("--timeout", default=600.0, show_default=True, help="Seconds to wait for the reload to finish.")
def reload(run_dir: str | None, timeout: float) -> None:
    """Replace every worker, one at a time, without re-identifying (the same as SIGHUP)."""
    result = _local(run_dir_of(run_dir), "reload", timeout)
    message = str(result.get("message", "")) if isinstance(result, dict) else ""
    click.echo(message)
    if not message.startswith("reload done"):
        raise click.exceptions.Exit(1)


@click.command("stop")
@run_dir_option
def stop(run_dir: str | None) -> None:
    """Stop the cluster: connections close resumably and their sessions are saved for the next start."""
    result = _local(run_dir_of(run_dir), "stop", 10.0)
    click.echo(result.get("message", "stopping") if isinstance(result, dict) else "stopping")


def _conns_of(status: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # The supervisor lists connections under "conns" (older ones said "shards").
    rows = status.get("conns")
    if rows is None:
        rows = status.get("shards") or []
    return list(rows)


def _count(value: object) -> str:
    if isinstance(value, list | tuple):
        return str(len(value))
    return "-" if value is None else str(value)


def _failures(failures: Mapping[str, int] | None) -> str:
    """``; failed calls: accept 3, identify 1`` (the controller's hooks), or nothing."""
    if not failures:
        return ""
    return "; failed calls: " + ", ".join(f"{hook} {n}" for hook, n in sorted(failures.items()))


def status_text(status: Mapping[str, Any], *, every_host: bool = False) -> str:
    """The status as the table ``shardrunner status`` prints: the cluster, its workers, its
    connections (named by ``conn``, e.g. ``discord:3/8``) and its consumer groups."""
    sup = status.get("supervisor") or {}
    conns = _conns_of(status)
    count = sup.get("num_shards", len(conns))
    lines = [
        f"cluster {sup.get('state', '?')}: {count} connections, supervisor pid {sup.get('pid', '?')}, "
        f"up {_duration(float(sup.get('uptime_s') or 0))}, gateway {sup.get('gateway_url') or '-'}"
    ]
    if sup.get("error"):
        lines.append(f"error: {sup['error']}")
    controller = status.get("controller")
    if controller:
        hooks = ", ".join(controller.get("hooks") or []) or "no hook"
        lines.append(f"controller {controller.get('name')}: {hooks}{_failures(controller.get('failures'))}")
    reshard = status.get("reshard")
    if reshard:
        from shardrunner.cli.reshard import progress_text

        lines.append(f"reshard {reshard.get('current')} -> {reshard.get('count')}: {progress_text(reshard)}")
    lines.append("")
    lines.append(f"{'worker':>6} {'pid':>8} {'cpu':>6} {'rss':>9} {'conns':>6}  state")
    for w in status.get("workers") or []:
        cpu = "-" if w.get("cpu_percent") is None else f"{w['cpu_percent']:.0f}%"
        rss = "-" if w.get("rss") is None else f"{w['rss'] / 1048576:.0f} MiB"
        state = str(w.get("state", "?")) + (", ready" if w.get("ready") else "")
        if w.get("filtered"):
            state += f", {w['filtered']} events filtered by the controller"
        if w.get("bus_rejected"):
            state += f", {w['bus_rejected']} bots' messages refused by its bus"
        state += _failures(w.get("hook_failures"))
        held = w.get("conns", w.get("shards"))
        lines.append(
            f"{w.get('slot', '?'):>6} {w.get('pid') or '-':>8} {cpu:>6} {rss:>9} {_count(held):>6}  {state}"
        )
    names = [_conn_name(c, int(count or 0)) for c in conns]
    width = max([len("conn"), *map(len, names)])
    lines.append("")
    lines.append(
        f"{'conn':<{width}} {'worker':>6} {'state':<13} {'latency':>8} {'events/s':>9} "
        f"{'keys':>7} {'resumes':>8}  last resume"
    )
    for name, c in zip(names, conns, strict=True):
        latency = "-" if c.get("latency_ms") is None else f"{c['latency_ms']:.0f} ms"
        ago = c.get("last_resume_ago_s")
        last = "-" if ago is None else f"{_duration(ago)} ago"
        keys = c.get("keys", 0)
        lines.append(
            f"{name:<{width}} {c.get('worker', '-'):>6} {c.get('state', '?'):<13} {latency:>8} "
            f"{float(c.get('events_per_s') or 0):>9.1f} {_count(keys):>7} {c.get('resumes', 0):>8}  {last}"
        )
    lines += _details_text(names, conns)
    budgets = status.get("budgets") or []
    if budgets:
        lines.append("")
        lines.append(
            "budgets in use (per 10 s window): "
            + ", ".join(
                f"{name} {key} {used}/{limit}" + (f" ({waiting} waiting)" if waiting else "")
                for name, key, used, limit, waiting in budgets
            )
        )
    groups = status.get("groups") or []
    if groups:
        lines.append("")
        lines.append(
            f"{'group':<16} {'members':>7} {'queued':>8} {'queued MiB':>10} {'in flight':>9} {'dropped':>8}"
        )
        for g in groups:
            mib = g["held_bytes"] / 1048576
            lines.append(
                f"{g['group']:<16} {g['members']:>7} {g['held_events']:>8} {mib:>10.1f} "
                f"{g['inflight']:>9} {g['dropped']:>8}"
            )
    from shardrunner.cli.hoststatus import hosts_text

    lines += hosts_text(status.get("hosts"), every_lease=every_host)
    return "\n".join(lines)


def _details_text(names: list[str], conns: list[Mapping[str, Any]]) -> list[str]:
    """What platforms show beyond the table (Twitch: each connection's role, login, channels,
    joins pending and failed channels; a sender's queue and refusals)."""
    rows = [(n, c["detail"]) for n, c in zip(names, conns, strict=True) if c.get("detail")]
    if not rows:
        return []
    width = max(len(n) for n, _ in rows)
    out = ["", f"{'conn':<{width}} {'role':<5} {'login':<20} detail"]
    for name, d in rows:
        if d.get("role") == "send":
            refused = ", ".join(f"{k} {v}" for k, v in sorted((d.get("refused") or {}).items())) or "none"
            text = (
                f"{d.get('sent', 0)} sent, {d.get('queued', 0)} queued, {d.get('unanswered', 0)} unanswered, "
                f"window {d.get('window', '-')}, refused: {refused}"
            )
        else:
            failed = d.get("failed") or {}
            text = (
                f"{d.get('joined', 0)}/{d.get('channels', 0)} channels joined, {d.get('joining', 0)} joining"
            )
            if d.get("backup"):
                text += ", backup"
            if failed:
                text += "; failed: " + ", ".join(f"#{c} ({why})" for c, why in sorted(failed.items()))
        out.append(f"{name:<{width}} {d.get('role', '-')!s:<5} {d.get('login', '-')!s:<20} {text}")
    return out


def _conn_name(row: Mapping[str, Any], count: int) -> str:
    conn = row.get("conn")
    if conn:
        return str(conn)
    # A status without conn (an older supervisor): its fields still name the connection.
    from shardrunner.protocol.keys import ConnKey

    shard = int(row.get("shard", row.get("id", 0)))
    total = int(row.get("count") or count)
    return str(ConnKey(str(row.get("platform", "discord")), int(row.get("generation", 0)), shard, total))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
