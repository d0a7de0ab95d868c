"""The layout: the cluster's connections cut into blocks, the unit a host leases.

Every host discovers the same connections and cuts them the same way
(:func:`~shardrunner.cluster.plan.plan_platforms`), so block ``i`` means the same connections on every
host. :func:`agree` checks that in Redis: the first host stores the layout's fingerprint, and a host
whose fingerprint differs refuses to start (:class:`LayoutMismatch`) rather than lease blocks that
mean other connections elsewhere. :func:`reset_layout` forgets the layout, the leases and the
sessions (``shardrunner hosts reset``, with the hosts stopped), keeping the epochs increasing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

import msgspec

from shardrunner.cluster.plan import plan_platforms
from shardrunner.identify.coordinator import Coordinator
from shardrunner.protocol.keys import ConnKey, describe_conns

#: The most blocks ``--lease-blocks auto`` cuts (a block per connection below it).
AUTO_BLOCKS_MAX = 32


class LayoutMismatch(RuntimeError):
    """This host's layout is not the one the cluster agreed on: it must not start."""


def auto_blocks(conns: int) -> int:
    """The blocks of ``--lease-blocks auto``: one per connection, at most 32, at least 1."""
    return max(1, min(conns, AUTO_BLOCKS_MAX))


def fingerprint(blocks: list[list[ConnKey]]) -> str:
    """16 hex of sha256 over the connections in block order and the block count: two hosts with the
    same fingerprint mean the same connections by the same block index."""
    digest = hashlib.sha256()
    for block in blocks:
        for conn in block:
            digest.update(str(conn).encode() + b"\n")
    digest.update(f"blocks={len(blocks)}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Layout:
    """Block ``i`` is ``blocks[i]``, a list of connections; ``fingerprint`` identifies the cut."""

    blocks: list[list[ConnKey]]
    fingerprint: str
    _index: dict[ConnKey, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {conn: i for i, block in enumerate(self.blocks) for conn in block}
        object.__setattr__(self, "_index", index)

    @property
    def conns(self) -> int:
        return len(self._index)

    def block_of(self, conn: ConnKey) -> int:
        """The block of ``conn``; KeyError when no block has it."""
        return self._index[conn]

    def conns_of(self, blocks: Iterable[int]) -> list[ConnKey]:
        """The connections of ``blocks``, in block order (each block once)."""
        return [conn for i in sorted(set(blocks)) for conn in self.blocks[i]]

    def describe(self, block: int) -> str:
        """Block ``block`` for people: ``discord:0-3/16``."""
        return describe_conns(self.blocks[block])


def make_layout(conns: list[ConnKey], blocks: int) -> Layout:
    """``conns`` cut into ``blocks`` blocks (``<= 0``: :func:`auto_blocks`); never more blocks than
    connections, and at least one."""
    count = blocks if blocks > 0 else auto_blocks(len(conns))
    cut = plan_platforms(conns, count)
    return Layout(cut, fingerprint(cut))


class StoredLayout(msgspec.Struct):
    """The layout the cluster agreed on, as Redis keeps it: the fingerprint, blocks, connections."""

    fingerprint: str
    blocks: int
    conns: int


#: KEYS[2]: the layout. ARGV[3]: this host's layout (JSON). Stores it if none is; returns the stored one.
_AGREE = """
redis.call('SET', KEYS[2], ARGV[3], 'NX')
return {epoch, redis.call('GET', KEYS[2])}
"""

#: KEYS[2]: the layout. Returns the stored layout, or ''.
_READ = """
return {epoch, redis.call('GET', KEYS[2]) or ''}
"""

#: KEYS[2..]: the layout, the sessions, the epoch floor, then (lease, held, epoch) per block.
#: Deletes the layout, sessions, leases and last holders; raises the epoch floor to the highest epoch
#: of any block, so that a block of the next layout (other connections under the same index) is
#: claimed with an epoch above every epoch its connections had.
_RESET = """
local floor = tonumber(redis.call('GET', KEYS[4]) or '0')
for i = 5, #KEYS, 3 do
  floor = math.max(floor, tonumber(redis.call('GET', KEYS[i + 2]) or '0'))
  redis.call('DEL', KEYS[i], KEYS[i + 1])
end
redis.call('SET', KEYS[4], floor)
redis.call('DEL', KEYS[2], KEYS[3])
return {epoch, floor}
"""


def cluster_name(coordinator: Coordinator) -> str:
    """The cluster name of ``coordinator`` (its key prefix is ``shardrunner:{cluster}:``)."""
    return coordinator.prefix.partition("{")[2].rpartition("}")[0]


async def agree(coordinator: Coordinator, layout: Layout) -> None:
    """Store ``layout``'s fingerprint if the cluster has none; raise :class:`LayoutMismatch` if the
    cluster agreed on another one."""
    mine = StoredLayout(layout.fingerprint, len(layout.blocks), layout.conns)
    script = coordinator.script(_AGREE)
    (raw,) = await coordinator.run(script, [coordinator.key("layout")], [msgspec.json.encode(mine).decode()])
    try:
        stored = msgspec.json.decode(raw, type=StoredLayout)
    except msgspec.DecodeError:
        stored = StoredLayout("(unreadable)", 0, 0)
    if stored.fingerprint == mine.fingerprint:
        return
    raise LayoutMismatch(
        f"the hosts of cluster {cluster_name(coordinator)} disagree on the connections: this host has "
        f"{mine.conns} connections in {mine.blocks} blocks, the cluster has {stored.conns} in "
        f"{stored.blocks} (fingerprint {mine.fingerprint}, the cluster's {stored.fingerprint}); start "
        "every host with the same settings, or stop every host and forget the cluster's layout with "
        f"`shardrunner hosts reset --coordinator URL --cluster-name {cluster_name(coordinator)}`"
    )


async def read_layout(coordinator: Coordinator) -> StoredLayout | None:
    """The layout the cluster agreed on (None: none stored; an unreadable one reads as none)."""
    (raw,) = await coordinator.run(coordinator.script(_READ), [coordinator.key("layout")], [])
    if not raw:
        return None
    try:
        return msgspec.json.decode(raw, type=StoredLayout)
    except msgspec.DecodeError:
        return None


async def reset_layout(coordinator: Coordinator, blocks: int = 0) -> None:
    """Forget the layout, the leases (of the stored layout's blocks, or ``blocks`` if more) and the
    sessions; the epochs stay increasing (an epoch floor). For ``shardrunner hosts reset``, with
    every host of the cluster stopped."""
    layout = await read_layout(coordinator)
    stored = layout.blocks if layout is not None else 0
    keys = [coordinator.key("layout"), coordinator.key("sessions"), coordinator.key("epoch_floor")]
    for i in range(max(stored, blocks, AUTO_BLOCKS_MAX)):
        keys += [coordinator.key("lease", i), coordinator.key("held", i), coordinator.key("epoch", i)]
    await coordinator.run(coordinator.script(_RESET), keys, [])
