"""``shardrunner hosts list|reset`` against a real redis-server: host records, the layout and the
leases written by the library the hosts use, read back through the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result

from shardrunner.cli import main
from shardrunner.cluster.hosts.directory import BusWorker, Directory, HostInfo
from shardrunner.cluster.hosts.layout import LayoutMismatch, agree, make_layout, read_layout
from shardrunner.cluster.hosts.leases import Leases
from shardrunner.identify.coordinator import Coordinator
from shardrunner.protocol.keys import ConnKey
from tests.redis_server import RedisServer, free_port

_T = TypeVar("_T")
CLUSTER = "bot1"
#: Nothing from the environment: each test gives its options.
CLEAN_ENV: dict[str, str | None] = {
    "SHARDRUNNER_COORDINATOR": None,
    "SHARDRUNNER_COORDINATOR_PASSWORD": None,
    "SHARDRUNNER_CLUSTER_NAME": None,
}


def discord(count: int) -> list[ConnKey]:
    return [ConnKey("discord", 0, s, count) for s in range(count)]


def with_redis(url: str, job: Callable[[Coordinator], Awaitable[_T]]) -> _T:
    async def go() -> _T:
        coordinator = Coordinator(url, CLUSTER)
        try:
            return await job(coordinator)
        finally:
            await coordinator.close()

    return asyncio.run(go())


def hosts(*args: str, url: str | None = None, input: str | None = None) -> Result:
    where = ["--coordinator", url, "--cluster-name", CLUSTER] if url else []
    return CliRunner().invoke(main, ["hosts", *args, *where], input=input, env=CLEAN_ENV)


async def two_hosts_and_four_blocks(c: Coordinator) -> None:
    """h1 holds blocks 0-1, h2 released block 2 and is gone, h3 left block 3 orphaned (its lease ran out)."""
    await agree(c, make_layout(discord(4), 0))
    directory = Directory(c, ttl=30)
    workers = [
        BusWorker("ipc:///run/a/bus-0-0.sock", ["discord:0/4", "discord:1/4"], tcp="tcp://10.0.0.1:4100")
    ]
    await directory.publish(
        HostInfo(name="h1", capacity=2, control="tcp://10.0.0.1:7300", workers=workers, blocks=[0, 1], pid=42,
                 started=time.time() - 5)
    )  # fmt: skip
    await directory.publish(HostInfo(name="s", role="standby", pid=43, started=time.time()))
    assert set(await Leases(c, "h1", ttl=30).claim([0, 1])) == {0, 1}
    h2 = Leases(c, "h2", ttl=30)
    await h2.release(await h2.claim([2]))
    assert await Leases(c, "h3", ttl=0.2).claim([3]) == {3: 1}
    await asyncio.sleep(0.3)  # h3 never renews: block 3 is orphaned


def test_hosts_list_when_nothing_stored_says_so(redis_server: RedisServer) -> None:
    result = hosts("list", url=redis_server.url)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"cluster {CLUSTER}: no layout stored (no host started since the last reset)",
        "0 live hosts",
    ]


def test_hosts_list_when_hosts_hold_blocks_shows_records_layout_and_every_lease(
    redis_server: RedisServer,
) -> None:
    with_redis(redis_server.url, two_hosts_and_four_blocks)
    fingerprint = make_layout(discord(4), 0).fingerprint
    result = hosts("list", url=redis_server.url)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"cluster {CLUSTER}: layout {fingerprint}, 4 connections in 4 blocks"
    assert lines[1] == "2 live hosts:"
    assert re.fullmatch(r"  h1  active  capacity 2  blocks 0,1  pid 42  up [5-9] s  running", lines[2])
    assert lines[3:5] == [
        "    control tcp://10.0.0.1:7300",
        "    worker 0: 2 connections at tcp://10.0.0.1:4100",
    ]
    assert lines[5].startswith("  s  standby  capacity 1  blocks none  pid 43  up ")
    assert lines[6] == "blocks:"
    assert re.fullmatch(r"  0: held by h1 \(epoch 1, lease \d+\.\d s left\)", lines[7])
    assert lines[9:] == ["  2: free, released by h2 (epoch 1)", "  3: free, orphaned by h3 (epoch 1)"]

    as_json = hosts("list", "--json", url=redis_server.url)
    assert as_json.exit_code == 0, as_json.output
    snapshot = json.loads(as_json.output)
    assert snapshot["cluster"] == CLUSTER
    assert snapshot["layout"] == {"fingerprint": fingerprint, "blocks": 4, "conns": 4}
    assert [h["name"] for h in snapshot["hosts"]] == ["h1", "s"]
    assert snapshot["hosts"][0]["workers"][0]["tcp"] == "tcp://10.0.0.1:4100"
    states = [(b["block"], b["state"], b["host"], b["epoch"]) for b in snapshot["blocks"]]
    assert states == [
        (0, "held", "h1", 1),
        (1, "held", "h1", 1),
        (2, "released", "h2", 1),
        (3, "orphaned", "h3", 1),
    ]
    assert 0 < snapshot["blocks"][0]["ttl"] <= 30


def test_hosts_reset_when_hosts_are_live_refuses_naming_them_unless_forced(redis_server: RedisServer) -> None:
    with_redis(redis_server.url, two_hosts_and_four_blocks)
    refused = hosts("reset", "--yes", url=redis_server.url)
    assert refused.exit_code == 1
    assert refused.output == (
        f"Error: cluster {CLUSTER} has live hosts (h1, s): stop them (`shardrunner stop` on each) and run "
        "this again, or pass --force\n"
    )
    assert with_redis(redis_server.url, read_layout) is not None, "nothing was reset"
    forced = hosts("reset", "--yes", "--force", url=redis_server.url)
    assert forced.exit_code == 0, forced.output
    assert with_redis(redis_server.url, read_layout) is None
    after = json.loads(hosts("list", "--json", url=redis_server.url).output)
    assert after["layout"] is None
    assert after["blocks"] == []


def test_hosts_reset_when_the_layout_mismatches_is_the_command_the_error_names(
    redis_server: RedisServer,
) -> None:
    """The sentence a host with other connections refuses to start with names a command that works."""

    async def mismatch(c: Coordinator) -> str:
        await agree(c, make_layout(discord(4), 0))
        with pytest.raises(LayoutMismatch) as raised:
            await agree(c, make_layout(discord(6), 0))
        return str(raised.value)

    sentence = with_redis(redis_server.url, mismatch)
    command = re.findall(r"`shardrunner (hosts reset [^`]*)`", sentence)
    assert command == [f"hosts reset --coordinator URL --cluster-name {CLUSTER}"]
    args = command[0].replace("URL", redis_server.url).split()
    declined = CliRunner().invoke(main, args, input="n\n", env=CLEAN_ENV)
    assert declined.exit_code == 1
    assert f"Forget the layout, the leases and the sessions of cluster {CLUSTER}?" in declined.output
    assert with_redis(redis_server.url, read_layout) is not None
    confirmed = CliRunner().invoke(main, args, input="y\n", env=CLEAN_ENV)
    assert confirmed.exit_code == 0, confirmed.output
    assert "forgot the layout, the leases and the sessions of cluster bot1" in confirmed.output

    async def agree_again(c: Coordinator) -> None:
        await agree(c, make_layout(discord(6), 0))  # the new layout is the cluster's now

    with_redis(redis_server.url, agree_again)


def test_hosts_when_redis_is_down_says_so_without_the_password() -> None:
    url = f"redis://:hunter2secret@127.0.0.1:{free_port()}/0"
    for args in (["list"], ["reset", "--yes"]):
        result = hosts(*args, url=url)
        assert result.exit_code == 1
        assert "is unreachable" in result.output
        assert "redis://:***@127.0.0.1" in result.output
        assert "hunter2secret" not in result.output
    env: dict[str, Any] = {**CLEAN_ENV, "SHARDRUNNER_COORDINATOR": "redis://127.0.0.1:1/0",
                           "SHARDRUNNER_COORDINATOR_PASSWORD": "pw-in-env"}  # fmt: skip
    from_env = CliRunner().invoke(main, ["hosts", "list"], env=env)
    assert from_env.exit_code == 1
    assert "redis://:***@127.0.0.1:1/0 is unreachable" in from_env.output
    assert "pw-in-env" not in from_env.output
    bad = hosts("list", url="http://example")
    assert bad.exit_code == 2
    assert "must be a Redis URL" in bad.output
