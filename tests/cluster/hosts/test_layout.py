"""The layout: blocks of the plan, the fingerprint, and the hosts agreeing on it in Redis."""

from __future__ import annotations

import pytest

from shardrunner.cluster.hosts.layout import (
    LayoutMismatch,
    agree,
    auto_blocks,
    cluster_name,
    make_layout,
    reset_layout,
)
from shardrunner.cluster.hosts.leases import Leases
from shardrunner.protocol.keys import ConnKey
from tests.cluster.hosts.conftest import MakeCoordinator


def discord(count: int) -> list[ConnKey]:
    return [ConnKey("discord", 0, s, count) for s in range(count)]


def test_layout_auto_blocks_when_counted_is_one_per_connection_up_to_32() -> None:
    assert [auto_blocks(n) for n in (0, 1, 16, 32, 33, 1000)] == [1, 1, 16, 32, 32, 32]


def test_layout_when_made_cuts_the_plan_and_finds_blocks_and_connections() -> None:
    conns = discord(16)
    layout = make_layout(conns, 4)
    assert [len(b) for b in layout.blocks] == [4, 4, 4, 4]
    assert layout.block_of(ConnKey("discord", 0, 5, 16)) == 1
    with pytest.raises(KeyError):
        layout.block_of(ConnKey("discord", 0, 5, 17))
    assert layout.conns_of([3, 0]) == conns[:4] + conns[12:]
    assert layout.describe(1) == "discord:4-7/16"
    assert len(make_layout(conns, 0).blocks) == 16
    assert len(make_layout(discord(40), -1).blocks) == 32
    assert len(make_layout(discord(3), 8).blocks) == 3, "never more blocks than connections"


def test_layout_fingerprint_when_connections_or_blocks_differ_differs() -> None:
    a = make_layout(discord(16), 4)
    assert a.fingerprint == make_layout(discord(16), 4).fingerprint
    assert len(a.fingerprint) == 16
    assert a.fingerprint != make_layout(discord(16), 8).fingerprint
    assert a.fingerprint != make_layout(discord(24), 4).fingerprint
    mixed = [*discord(4), ConnKey("twitch", 0, 0, 2), ConnKey("twitch", 0, 1, 2)]
    layout = make_layout(mixed, 2)
    assert layout.describe(0) == "discord:0-1/4, twitch:0/2"


async def test_layout_agree_when_hosts_share_settings_passes_and_when_not_names_both(
    coordinators: MakeCoordinator,
) -> None:
    a, b = await coordinators(), await coordinators()
    await agree(a, make_layout(discord(24), 0))
    await agree(b, make_layout(discord(24), 0))
    with pytest.raises(LayoutMismatch) as raised:
        await agree(b, make_layout(discord(16), 0))
    text = str(raised.value)
    assert "this host has 16 connections in 16 blocks, the cluster has 24 in 24" in text
    assert text.startswith(f"the hosts of cluster {cluster_name(a)} disagree on the connections")
    assert cluster_name(a).startswith("hosts")
    assert "shardrunner hosts reset" in text
    await reset_layout(b)
    await agree(b, make_layout(discord(16), 0))  # the first layout after a reset is the cluster's


async def test_layout_reset_when_the_layout_changes_keeps_epochs_above_every_old_one(
    coordinators: MakeCoordinator,
) -> None:
    c = await coordinators()
    leases = Leases(c, "a", ttl=5.0)
    for _ in range(3):
        held = await leases.claim([1])
        await leases.release(held)
    assert held == {1: 3}
    await reset_layout(c)
    fresh = Leases(c, "b", ttl=5.0)  # knows no epoch
    assert await fresh.claim([0, 1]) == {0: 4, 1: 4}, "the leases are gone, the epochs go on"
    assert (await fresh.table(2))[0].keys() == {0, 1}
