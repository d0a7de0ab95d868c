"""``shardrunner hosts list|reset``: what the hosts of one bot share in Redis (docs/hosts.md).

``list`` reads the live host records (:class:`~shardrunner.cluster.hosts.directory.Directory`), the
stored layout and the lease of every block (:meth:`~shardrunner.cluster.hosts.leases.Leases.table`);
``reset`` forgets the layout, the leases and the sessions
(:func:`~shardrunner.cluster.hosts.layout.reset_layout`), refused while a host is live. Both only
read Redis or run those scripts: no host is asked anything. The URL and the password are secret:
neither is printed (errors name the URL with its password masked).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from shardrunner.cli.common import run

if TYPE_CHECKING:
    from shardrunner.cluster.hosts.directory import HostInfo
    from shardrunner.cluster.hosts.layout import StoredLayout
    from shardrunner.identify.coordinator import Coordinator

_T = TypeVar("_T")

#: The name :class:`~shardrunner.cluster.hosts.leases.Leases` is given to read the table (it claims nothing).
_READER = "shardrunner-hosts-cli"


def _url(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from shardrunner.settings.hosts import to_redis_url

    try:
        return to_redis_url(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from shardrunner.settings.hosts import to_name

    try:
        name = to_name(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if not name:
        raise click.BadParameter("must not be empty")
    return name


def _coordinator_options(command: Any) -> Any:
    """``--coordinator``, ``--coordinator-password``, ``--cluster-name``, as `shardrunner start` has them."""
    for option in reversed(
        (
            click.option(
                "--coordinator",
                metavar="URL",
                required=True,
                envvar="SHARDRUNNER_COORDINATOR",
                callback=_url,
                show_envvar=True,
                help="The Redis the hosts share (redis://host:6379/0, rediss:// for TLS), as given to "
                "`shardrunner start`. Secret: never printed.",
            ),
            click.option(
                "--coordinator-password",
                metavar="PASSWORD",
                default=None,
                envvar="SHARDRUNNER_COORDINATOR_PASSWORD",
                show_envvar=True,
                help="The Redis password, if it is not in the URL (better in the env var).",
            ),
            click.option(
                "--cluster-name",
                metavar="NAME",
                default="shardrunner",
                show_default=True,
                envvar="SHARDRUNNER_CLUSTER_NAME",
                callback=_name,
                show_envvar=True,
                help="The bot's name in Redis, as given to `shardrunner start`.",
            ),
        )
    ):
        command = option(command)
    return command


@click.group("hosts")
def hosts() -> None:
    """Look at the hosts of a bot run on several machines (`shardrunner start --coordinator`) and
    the leases of their connections, or forget the cluster's layout. These read and write Redis
    directly: they work with every host stopped too."""


def _connect(url: str, password: str | None, cluster: str) -> Coordinator:
    from shardrunner.identify.coordinator import Coordinator
    from shardrunner.settings.hosts import coordinator_url

    class _Given:
        coordinator, coordinator_password = url, password

    full = coordinator_url(_Given())
    assert full is not None
    return Coordinator(full, cluster)


def _redis(url: str, password: str | None, cluster: str, job: Callable[[Coordinator], Awaitable[_T]]) -> _T:
    """Run ``job`` with the cluster's coordinator; Redis errors as one sentence (the URL masked)."""
    import redis.exceptions

    from shardrunner.identify.coordinator import CoordinatorDown

    coordinator = _connect(url, password, cluster)

    async def go() -> _T:
        try:
            return await job(coordinator)
        finally:
            await coordinator.close()

    try:
        return run(go())
    except CoordinatorDown as exc:
        raise click.ClickException(f"{exc}: is Redis running there?") from None
    except redis.exceptions.RedisError as exc:
        raise click.ClickException(
            f"the coordinator at {coordinator.url} refused ({type(exc).__name__}: {exc})"
        ) from None


async def _snapshot(coordinator: Coordinator) -> dict[str, Any]:
    """The live hosts, the stored layout and the lease of every block, as ``list --json`` prints it."""
    from shardrunner.cluster.hosts.directory import Directory
    from shardrunner.cluster.hosts.layout import cluster_name, read_layout
    from shardrunner.cluster.hosts.leases import Leases

    live = await Directory(coordinator, ttl=1.0).hosts()
    layout = await read_layout(coordinator)
    count = layout.blocks if layout is not None else 0
    holders, last = await Leases(coordinator, _READER, ttl=1.0).table(count)
    blocks = []
    for i in range(count):
        if i in holders:
            h = holders[i]
            blocks.append({"block": i, "state": "held", "host": h.host, "epoch": h.epoch, "ttl": h.ttl})
        elif i in last:
            gone = last[i]
            state = "released" if gone.released else "orphaned"
            blocks.append({"block": i, "state": state, "host": gone.host, "epoch": gone.epoch, "ttl": None})
        else:
            blocks.append({"block": i, "state": "free", "host": None, "epoch": None, "ttl": None})
    return {
        "cluster": cluster_name(coordinator),
        "layout": None if layout is None else _layout_dict(layout),
        "hosts": [_host_dict(info) for info in live],
        "blocks": blocks,
    }


def _layout_dict(layout: StoredLayout) -> dict[str, Any]:
    return {"fingerprint": layout.fingerprint, "blocks": layout.blocks, "conns": layout.conns}


def _host_dict(info: HostInfo) -> dict[str, Any]:
    import msgspec

    out: dict[str, Any] = msgspec.to_builtins(info)
    return out


@hosts.command("list")
@_coordinator_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (hosts, layout, blocks).")
def list_(coordinator: str, coordinator_password: str | None, cluster_name: str, as_json: bool) -> None:
    """Print every live host (role, capacity, blocks held, control endpoint, workers) and the lease
    of every block: its holder and epoch, or, when free, whether its last holder released it or
    left it orphaned (died or stalled: a standby takes those first)."""
    snapshot = _redis(coordinator, coordinator_password, cluster_name, _snapshot)
    if as_json:
        click.echo(json.dumps(snapshot, indent=2))
        return
    for line in _describe(snapshot):
        click.echo(line)


def _describe(snapshot: dict[str, Any]) -> list[str]:
    name, layout = snapshot["cluster"], snapshot["layout"]
    if layout is None:
        lines = [f"cluster {name}: no layout stored (no host started since the last reset)"]
    else:
        lines = [
            f"cluster {name}: layout {layout['fingerprint']}, {layout['conns']} connections in "
            f"{layout['blocks']} blocks"
        ]
    live = snapshot["hosts"]
    lines.append(f"{len(live)} live host{'' if len(live) == 1 else 's'}" + (":" if live else ""))
    now = time.time()
    for h in live:
        held = ",".join(str(b) for b in h["blocks"]) or "none"
        up = f"up {max(0, round(now - h['started']))} s" if h["started"] else "up ?"
        lines.append(
            f"  {h['name']}  {h['role']}  capacity {h['capacity']}  blocks {held}  pid {h['pid']}  {up}  "
            f"{h['status']}"
        )
        if h["control"]:
            lines.append(f"    control {h['control']}")
        for w in h["workers"]:
            where = w["tcp"] or w["endpoint"]
            lines.append(f"    worker {w['slot']}: {len(w['conns'])} connections at {where}")
    if snapshot["blocks"]:
        lines.append("blocks:")
    for b in snapshot["blocks"]:
        if b["state"] == "held":
            what = f"held by {b['host']} (epoch {b['epoch']}, lease {b['ttl']:.1f} s left)"
        elif b["state"] == "free":
            what = "free (never held)"
        else:
            what = f"free, {b['state']} by {b['host']} (epoch {b['epoch']})"
        lines.append(f"  {b['block']}: {what}")
    return lines


@hosts.command("reset")
@_coordinator_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--force",
    is_flag=True,
    help="Reset even while hosts are live (they lose their leases and may start other connections "
    "under the same block numbers: stop them instead).",
)
def reset(
    coordinator: str, coordinator_password: str | None, cluster_name: str, yes: bool, force: bool
) -> None:
    """Forget the cluster's layout, the leases of its blocks and the sessions kept in Redis, so that
    hosts started with other connections (another shard count, other channels) agree on a new
    layout. The epochs go on increasing. Refused while any host is live, unless --force: stop
    every host first. The next start identifies every connection again (no session is kept)."""
    from shardrunner.cluster.hosts.directory import Directory

    async def live(c: Coordinator) -> list[str]:
        return [info.name for info in await Directory(c, ttl=1.0).hosts()]

    names = _redis(coordinator, coordinator_password, cluster_name, live)
    if names and not force:
        raise click.ClickException(
            f"cluster {cluster_name} has live hosts ({', '.join(names)}): stop them (`shardrunner stop` "
            "on each) and run this again, or pass --force"
        )
    if not yes:
        click.confirm(
            f"Forget the layout, the leases and the sessions of cluster {cluster_name}?", abort=True
        )

    async def forget(c: Coordinator) -> None:
        from shardrunner.cluster.hosts.layout import reset_layout

        await reset_layout(c)

    _redis(coordinator, coordinator_password, cluster_name, forget)
    click.echo(
        f"forgot the layout, the leases and the sessions of cluster {cluster_name}; the next hosts to "
        "start agree on a new layout"
    )
