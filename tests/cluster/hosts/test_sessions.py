"""Sessions and consumer groups in Redis: put, get, age, drop, many at once."""

from __future__ import annotations

import pytest

from shardrunner.cluster.hosts.sessions import SessionStore
from shardrunner.identify.coordinator import CoordinatorDown
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.cluster.hosts.conftest import MakeCoordinator
from tests.conftest import wait_for
from tests.redis_server import RedisServer


def conn(shard: int, count: int = 16) -> ConnKey:
    return ConnKey("discord", 0, shard, count)


def snap(shard: int, seq: int = 1, count: int = 16) -> SessionSnapshot:
    return SessionSnapshot(
        conn=conn(shard, count), session_id=f"s{shard}", seq=seq, resume_url="wss://r", keys=[shard, "x"]
    )


async def test_sessions_when_put_are_got_in_order_replaced_and_dropped(coordinators: MakeCoordinator) -> None:
    c = await coordinators()
    store = SessionStore(c, max_age=60.0)
    await store.put([snap(0), snap(1), snap(2)])
    await store.put([snap(1, seq=9)])
    assert await store.get([conn(2), conn(1), conn(5)]) == [snap(2), snap(1, seq=9)]
    await store.drop([conn(1)])
    assert await store.get([conn(0), conn(1)]) == [snap(0)]
    calls = c.calls
    await store.put([])
    await store.drop([])
    assert await store.get([]) == []
    assert c.calls == calls, "nothing to do: no call"


async def test_sessions_when_older_than_the_resume_window_or_unreadable_are_left_out(
    coordinators: MakeCoordinator,
) -> None:
    c = await coordinators()
    short = SessionStore(c, max_age=0.5)
    await short.put([snap(0)])
    await c.client.hset(c.key("sessions"), str(conn(1)), "garbage")
    await c.client.hset(
        c.key("sessions"), str(conn(2)), '{"written_at":1e12,"snapshot":' + snap(3).encode().decode() + "}"
    )
    assert await short.get([conn(0), conn(1), conn(2)]) == [snap(0)], "a field holding another conn: left out"

    async def aged() -> bool:
        return await short.get([conn(0)]) == []

    await wait_for(aged, 5.0, "the snapshot to age past the resume window")
    assert await SessionStore(c, max_age=60.0).get([conn(0)]) == [snap(0)], "still stored"


async def test_sessions_when_10000_are_put_take_two_calls_each_way(coordinators: MakeCoordinator) -> None:
    c = await coordinators()
    store = SessionStore(c, max_age=60.0)
    many = [snap(s, seq=s, count=10_000) for s in range(10_000)]
    calls = c.calls
    await store.put(many)
    got = await store.get([s.conn for s in many])
    assert got == many
    await store.drop([s.conn for s in many[:5000]])
    assert len(await store.get([s.conn for s in many])) == 5000
    assert c.calls - calls == 8, "sessions and their keys: one call each, whatever the count"


async def test_sessions_groups_when_declared_add_and_update(coordinators: MakeCoordinator) -> None:
    store = SessionStore(await coordinators(), max_age=60.0)
    assert await store.groups() == {}
    await store.put_groups({"audit": None, "mod": ["MESSAGE_DELETE"]})
    await store.put_groups({"mod": ["MESSAGE_DELETE", "BAN"]})
    await store.put_groups({})
    assert await store.groups() == {"audit": None, "mod": ["MESSAGE_DELETE", "BAN"]}


async def test_sessions_when_redis_is_down_raise_coordinator_down(
    redis_server: RedisServer, coordinators: MakeCoordinator
) -> None:
    store = SessionStore(await coordinators(), max_age=60.0)
    redis_server.stop()
    calls = (store.put([snap(0)]), store.get([conn(0)]), store.drop([conn(0)]), store.groups())
    for call in (*calls, store.put_groups({"a": None})):
        with pytest.raises(CoordinatorDown, match=str(redis_server.port)):
            await call


async def test_sessions_when_their_keys_did_not_change_write_the_seq_alone_and_keep_the_keys(
    coordinators: MakeCoordinator,
) -> None:
    c = await coordinators()
    store = SessionStore(c, max_age=60.0)
    await store.put([snap(0), snap(1)])
    moved = SessionSnapshot(conn=conn(0), session_id="s0", seq=50, resume_url="wss://r", keys=["ignored"])
    calls = c.calls
    await store.put([moved], keys_of=set())
    assert c.calls == calls + 1, "no keys to write: one call"
    assert await store.get([conn(0)]) == [snap(0, seq=50)], "the keys written before stand"
    await store.put([moved], keys_of={conn(0)})
    assert (await store.get([conn(0)]))[0].keys == ["ignored"]
    stored = await c.client.hget(c.key("sessions"), str(conn(1)))
    assert "x" not in stored, "the session's own value does not carry its keys"


async def test_sessions_when_put_only_new_keep_those_stored(coordinators: MakeCoordinator) -> None:
    store = SessionStore(await coordinators(), max_age=60.0)
    await store.put([snap(0, seq=5)])
    await store.put([snap(0, seq=2), snap(1, seq=2)], only_new=True)
    assert await store.get([conn(0), conn(1)]) == [snap(0, seq=5), snap(1, seq=2)]
