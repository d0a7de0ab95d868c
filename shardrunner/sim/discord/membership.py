"""Guilds joining and leaving at run time, as when the bot is added to a server or removed from one.

A join is a GUILD_CREATE (the full guild) and a leave a GUILD_DELETE ``{"id": ...}`` without
``unavailable`` (the bot left; Discord sends ``unavailable: true`` only for an outage). Either is one
world dispatch with one id (:mod:`.tracking`), delivered to the shard that owns the guild in every
live layout, so a bot that runs two shard counts while it reshards sees it on both. A join that
would put a live session over ``max_guilds_per_shard`` is refused and counted: Discord stops adding a
bot that needs to reshard. ``guild_growth`` makes guilds join at a steady rate.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import msgspec

from shardrunner.protocol.discord import shard_for_guild

if TYPE_CHECKING:
    from shardrunner.sim.discord.server import Simulator

#: How often the growth task adds the guilds that accumulated.
_GROWTH_TICK_S: Final = 0.05


class Membership:
    """Joins, leaves and their counts for one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.joins = 0
        self.leaves = 0
        self.joins_refused = 0
        self._rng = random.Random(sim.config.seed ^ 0x1EA7E)

    def add(self, count: int) -> tuple[list[int], int]:
        """``count`` guilds try to join; returns the ids that joined and how many were refused."""
        world = self.sim.world
        added: list[int] = []
        refused = 0
        for _ in range(count):
            gid = world.draw_guild_id()
            if self._would_overfill(gid):
                refused += 1
                continue
            world.add_guild(gid)
            added.append(gid)
            self._deliver(b"GUILD_CREATE", gid, None)
        self.joins += len(added)
        self.joins_refused += refused
        return added, refused

    def remove(self, guild_ids: Iterable[int]) -> list[int]:
        """These guilds (all known: check with :meth:`World.has_guild` first) leave."""
        world = self.sim.world
        removed = []
        for gid in guild_ids:
            world.remove_guild(gid)
            removed.append(gid)
            self._deliver(b"GUILD_DELETE", gid, b'{"id":"%d"}' % gid)
        self.leaves += len(removed)
        return removed

    def remove_random(self, count: int) -> list[int]:
        """``count`` guilds drawn at random (seeded) leave, or every guild if there are fewer."""
        ids = self.sim.world.guild_ids
        return self.remove(self._rng.sample(ids, min(count, len(ids))))

    def _would_overfill(self, gid: int) -> bool:
        world = self.sim.world
        limit = self.sim.config.max_guilds_per_shard
        for num_shards, by_shard in self.sim.table.layouts.items():
            shard = shard_for_guild(gid, num_shards)
            if by_shard.get(shard) and len(world.guilds_for(shard, num_shards)) >= limit:
                return True
        return False

    def _deliver(self, name: bytes, gid: int, d: bytes | None) -> None:
        """One world dispatch about ``gid`` to its shard in every live layout; ``d`` None is the
        guild's GUILD_CREATE (which depends on the session's ``large_threshold``)."""
        world = self.sim.world
        ident = self.sim.dispatches.next_id()
        for num_shards, by_shard in self.sim.table.layouts.items():
            for s in by_shard.get(shard_for_guild(gid, num_shards), ()):
                if s.script is not None:
                    continue  # a scripted session's seqs are its script's
                seq = s.append(name, _joined(world.guild_create(gid, s.large_threshold)) if d is None else d)
                if s.track is not None:
                    s.track.record(seq, ident)
                if s.conn is not None:
                    s.conn.wake.set()

    async def grow(self) -> None:
        """Add ``guild_growth`` guilds per second (settable at run time)."""
        last = time.monotonic()
        credit = 0.0
        while True:
            await asyncio.sleep(_GROWTH_TICK_S)
            now = time.monotonic()
            dt, last = now - last, now
            rate = self.sim.config.guild_growth
            if rate <= 0:
                credit = 0.0
                continue
            credit += rate * dt
            n = int(credit)
            credit -= n
            if n:
                self.add(n)

    def summary(self) -> dict[str, Any]:
        """``GET /_sim/guilds``: the totals, and per live layout the guilds of each shard."""
        sim = self.sim
        world = sim.world
        layouts = []
        for num_shards, by_shard in sorted(sim.table.layouts.items()):
            sessions = sum(len(peers) for peers in by_shard.values())
            if sessions:
                counts = world.guild_counts(num_shards)
                layouts.append({"num_shards": num_shards, "sessions": sessions, "guilds": counts})
        return {
            "total": world.guild_total,
            "joins": self.joins,
            "leaves": self.leaves,
            "joins_refused": self.joins_refused,
            "max_guilds_per_shard": sim.config.max_guilds_per_shard,
            "recommended_shards": world.recommended_shards(),
            "layouts": layouts,
        }


def _joined(data: bytes) -> bytes:
    """A join's GUILD_CREATE: a session start's without ``unavailable``. Discord leaves it out when
    the bot joins a guild (discord-api-docs #5124), and libraries tell a join (discord.py's
    ``on_guild_join``) from a guild becoming available by it."""
    body = msgspec.json.decode(data)
    body.pop("unavailable", None)
    return msgspec.json.encode(body)
