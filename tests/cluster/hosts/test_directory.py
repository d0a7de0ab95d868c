"""The directory of hosts against a real redis-server: records, expiry, leaving."""

from __future__ import annotations

import pytest

from shardrunner.cluster.hosts.directory import BusWorker, Directory, HostInfo
from shardrunner.identify.coordinator import CoordinatorDown
from tests.cluster.hosts.conftest import MakeCoordinator
from tests.conftest import wait_for
from tests.redis_server import RedisServer


async def test_directory_when_hosts_publish_lists_them_by_name_and_forgets_one_that_stopped(
    coordinators: MakeCoordinator,
) -> None:
    short = Directory(await coordinators(), ttl=0.3)
    long = Directory(await coordinators(), ttl=30.0)
    b = HostInfo(
        name="b",
        role="standby",
        capacity=4,
        control="tcp://10.0.0.2:7000",
        workers=[BusWorker("tcp://10.0.0.2:40001", ["discord:0/4", "discord:1/4"], slot=1)],
        pid=123,
        started=1.5,
        version="0.1.0",
    )
    await long.publish(b)
    await short.publish(HostInfo(name="a", blocks=[0, 1]))
    hosts = await long.hosts()
    assert [h.name for h in hosts] == ["a", "b"]
    assert hosts[1] == b
    assert hosts[0].blocks == [0, 1]

    async def expired() -> bool:
        return [h.name for h in await long.hosts()] == ["b"]

    await wait_for(expired, 5.0, "a's record to expire")
    assert await long.coordinator.client.smembers(long.coordinator.key("hosts")) == {"b"}, "pruned"
    await short.publish(HostInfo(name="a", status="starting"))
    assert [(h.name, h.status) for h in await long.hosts()] == [("a", "starting"), ("b", "running")]
    await long.leave("a")
    assert [h.name for h in await long.hosts()] == ["b"]


async def test_directory_when_a_record_is_unreadable_leaves_it_out(coordinators: MakeCoordinator) -> None:
    directory = Directory(await coordinators(), ttl=30.0)
    c = directory.coordinator
    await directory.publish(HostInfo(name="a"))
    await c.client.set(c.key("host", "z"), "not json")
    await c.client.sadd(c.key("hosts"), "z")
    assert [h.name for h in await directory.hosts()] == ["a"]


async def test_directory_when_redis_is_down_raises_coordinator_down(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    directory = Directory(await coordinators(), ttl=30.0)
    redis_server.stop()
    for call in (directory.publish(HostInfo(name="a")), directory.hosts(), directory.leave("a")):
        with pytest.raises(CoordinatorDown, match=str(redis_server.port)):
            await call
