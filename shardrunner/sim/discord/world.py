"""The simulated bot's world: its token, its guilds, and the dispatches that happen in them.

Guilds are one set for the whole simulator; guilds join (:meth:`World.add_guild`) and leave
(:meth:`World.remove_guild`) at run time. Which shard receives a guild depends on the shard
count the client identifies with (``(guild_id >> 22) % num_shards``), so a client may connect with
any shard count, or two at once while it reshards, and see each guild exactly where Discord would
put it. Guild ids are chosen so that, with the configured ``--shards``, every shard gets exactly
``--guilds-per-shard`` guilds.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from collections.abc import Iterator
from typing import Final

import msgspec

from shardrunner.protocol.discord import shard_for_guild
from shardrunner.sim.discord.config import ConfigError, SimConfig
from shardrunner.sim.discord.entities import (
    DEFAULT_MIX,
    DM_CAPABLE,
    SUPPORTED_EVENTS,
    EntityFactory,
    GuildModel,
    snowflake,
)

#: Guild ids start around 2021-01-01 so they look like real snowflakes.
_GUILD_EPOCH_MS: Final = 1609459200000
#: Guilds that join at run time have ids from 2025-01-01 on, one millisecond apart, so that joins go
#: round-robin over the shards of any shard count.
_JOIN_EPOCH_MS: Final = 1735689600000
DEFAULT_BOT_ID: Final = 1100000000000000001

_encode = msgspec.json.encode


def make_token(user_id: int, timestamp: str = "simulated", signature: str = "token-secret") -> str:
    """A token of the shape Discord bot tokens have: ``base64(user id).timestamp.signature``."""
    if "." in timestamp or "." in signature or not timestamp or not signature:
        raise ValueError("timestamp and signature must be non-empty and contain no dot")
    head = base64.urlsafe_b64encode(str(user_id).encode()).rstrip(b"=").decode()
    return f"{head}.{timestamp}.{signature}"


def token_user_id(token: str) -> int | None:
    """The bot user id a well-formed token names, or ``None`` if it does not look like a bot token."""
    if token.startswith("Bot "):
        token = token[4:]
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    head = parts[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
    except (binascii.Error, ValueError):
        return None
    text = raw.decode("ascii", "replace")
    return int(text) if text.isdigit() and len(text) <= 20 else None


class World:
    """Guilds, entity builders and the dispatch generator of one simulator."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        bot_id = DEFAULT_BOT_ID
        if config.token is not None:
            named = token_user_id(config.token)
            if named is None:
                raise ConfigError("--token does not look like a Discord bot token (base64(user id).x.y)")
            bot_id = named
        self.bot_id = bot_id
        self.entities = EntityFactory(random.Random(config.seed ^ 0x5EED), bot_id, bot_id)
        mix = config.mix or DEFAULT_MIX
        unknown = sorted(set(mix) - SUPPORTED_EVENTS)
        if unknown:
            known = ", ".join(sorted(SUPPORTED_EVENTS))
            raise ConfigError(f"--mix: unknown dispatch {unknown[0]!r} (known: {known})")
        self.mix_names = [name for name, w in mix.items() if w > 0]
        self.mix_weights = list(_cumulative([mix[n] for n in self.mix_names]))
        # Guild ids: the timestamp part runs through residues of --shards so each shard gets its share.
        n = config.shards
        base = (_GUILD_EPOCH_MS - 1420070400000) // n * n
        self.guild_ids: list[int] = []
        layout_rng = random.Random(config.seed ^ 0x6D17)
        for j in range(config.guilds_per_shard):
            for s in range(n):
                self.guild_ids.append(
                    snowflake(1420070400000 + base + j * n + s, layout_rng.randrange(1 << 22))
                )
        self.guilds_by_shard: list[list[int]] = [[] for _ in range(n)]
        for gid in self.guild_ids:
            self.guilds_by_shard[shard_for_guild(gid, n)].append(gid)
        self.member_counts = {gid: self._draw_members(layout_rng) for gid in self.guild_ids}
        self._models: dict[int, GuildModel] = {}
        self._guild_create: dict[tuple[int, bool], bytes] = {}
        self._layout_cache: dict[tuple[int, int], list[int]] = {}
        self._join_rng = random.Random(config.seed ^ 0x701)
        self._joins_drawn = 0

    def _draw_members(self, rng: random.Random) -> int:
        lo, hi = self.config.min_members, self.config.max_members
        # Log-uniform: many small guilds, a few big ones, as on a real bot.
        return min(hi, max(lo, round(math.exp(rng.uniform(math.log(lo), math.log(hi))))))

    def guilds_for(self, shard_id: int, num_shards: int) -> list[int]:
        """The guilds a session identified as ``[shard_id, num_shards]`` receives, in a stable order."""
        key = (shard_id, num_shards)
        cached = self._layout_cache.get(key)
        if cached is None:
            if num_shards == self.config.shards:
                cached = self.guilds_by_shard[shard_id]
            else:
                cached = [g for g in self.guild_ids if shard_for_guild(g, num_shards) == shard_id]
            self._layout_cache[key] = cached
        return cached

    @property
    def guild_total(self) -> int:
        return len(self.guild_ids)

    def has_guild(self, guild_id: int) -> bool:
        return guild_id in self.member_counts

    def recommended_shards(self) -> int:
        """``shards`` in ``/gateway/bot``: one shard per ``recommend_per`` guilds, never fewer than
        ``--shards``, rounded up to ``shard_multiple``."""
        cfg = self.config
        n = max(cfg.shards, -(-len(self.guild_ids) // cfg.recommend_per))
        return -(-n // cfg.shard_multiple) * cfg.shard_multiple

    def draw_guild_id(self) -> int:
        """The id of the next guild that would join (each call draws a new one)."""
        self._joins_drawn += 1
        return snowflake(_JOIN_EPOCH_MS + self._joins_drawn, self._join_rng.randrange(1 << 22))

    def add_guild(self, guild_id: int | None = None) -> int:
        """A guild joins (the bot was added to it): it gets traffic and is in every layout from now on."""
        gid = self.draw_guild_id() if guild_id is None else guild_id
        if gid in self.member_counts:
            raise ValueError(f"guild {gid} is already there")
        self.member_counts[gid] = self._draw_members(self._join_rng)
        self.guild_ids.append(gid)
        n = self.config.shards
        self.guilds_by_shard[shard_for_guild(gid, n)].append(gid)  # the generator's, and layout n's
        for (shard_id, num_shards), cached in self._layout_cache.items():
            if num_shards != n and shard_for_guild(gid, num_shards) == shard_id:
                cached.append(gid)
        return gid

    def remove_guild(self, guild_id: int) -> None:
        """A guild leaves (the bot was removed): no more traffic, and no layout lists it. KeyError if
        it is not there."""
        del self.member_counts[guild_id]
        self.guild_ids.remove(guild_id)
        n = self.config.shards
        self.guilds_by_shard[shard_for_guild(guild_id, n)].remove(guild_id)
        for (shard_id, num_shards), cached in self._layout_cache.items():
            if num_shards != n and shard_for_guild(guild_id, num_shards) == shard_id:
                cached.remove(guild_id)
        self._models.pop(guild_id, None)
        for large in (False, True):
            self._guild_create.pop((guild_id, large), None)

    def guild_counts(self, num_shards: int) -> list[int]:
        """How many guilds each shard of a ``num_shards`` layout holds."""
        counts = [0] * num_shards
        for gid in self.guild_ids:
            counts[shard_for_guild(gid, num_shards)] += 1
        return counts

    def model(self, guild_id: int) -> GuildModel:
        m = self._models.get(guild_id)
        if m is None:
            m = self._models[guild_id] = self.entities.guild_model(guild_id, self.member_counts[guild_id])
        return m

    def guild_create(self, guild_id: int, large_threshold: int) -> bytes:
        """The encoded GUILD_CREATE ``d`` of a guild (built once, then cached)."""
        large = self.member_counts[guild_id] > large_threshold
        key = (guild_id, large)
        data = self._guild_create.get(key)
        if data is None:
            data = _encode(self.entities.guild_create(self.model(guild_id), large_threshold=large_threshold))
            self._guild_create[key] = data
        return data

    def member_count(self, guild_id: int) -> int:
        return self.member_counts[guild_id]

    def next_event(self, shard_id: int) -> tuple[str, int | None, bytes]:
        """One random dispatch for configured shard ``shard_id``: (name, guild id or None for a DM, d)."""
        rng = self.rng
        name = rng.choices(self.mix_names, cum_weights=self.mix_weights)[0]
        guilds = self.guilds_by_shard[shard_id]
        if not guilds or (name in DM_CAPABLE and rng.random() < self.config.dm_ratio):
            if name not in DM_CAPABLE:
                name = "MESSAGE_CREATE"
            return name, None, _encode(self.entities.event(name, None))
        gid = guilds[rng.randrange(len(guilds))]
        return name, gid, _encode(self.entities.event(name, self.model(gid)))


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total
