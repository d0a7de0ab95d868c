"""The factory's base: the guild model, the seeded generator, the virtual clock, minted ids.

The factory is one class built in layers, one module per kind of entity (core, users, members,
channels, guilds, messages, dispatch); each layer may use the layers below it.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Final

from shardrunner.sim.discord.entities.ids import (
    _LOW_BITS,
    _LOW_MASK,
    _USER_CREATED_MAX_MS,
    _USER_CREATED_MIN_MS,
    START_MS,
    snowflake,
)


@dataclass(slots=True)
class GuildModel:
    """The shape of one simulated guild: ids only, everything else is derived from them."""

    id: int
    name: str
    owner_id: int
    channel_ids: list[int]  # text channels, first one is the "general" channel
    voice_channel_ids: list[int]
    role_ids: list[int]  # role_ids[0] == id (the @everyone role has the guild's id)
    member_ids: list[int]  # user ids of every member, bot user included
    member_count: int  # == len(member_ids)


@dataclass(slots=True)
class _GuildCtx:
    """What building many members of one guild needs, computed once per payload."""

    id: int
    id_str: str
    created_ms: int
    bot_role: str | None
    booster_role: str | None
    role_pool: list[str]


@dataclass(slots=True)
class _RecentMessage:
    id: int
    channel_id: int
    author_id: int
    content: str  # as first sent: edits derive from it so repeated edits do not grow the message


#: DM partners per factory; DMs are rare next to guild traffic, a handful is realistic.
_MAX_DM_PARTNERS: Final = 16


class _Core:
    """The factory's shared state: the seeded generator, the virtual clock and minted ids."""

    def __init__(
        self, rng: random.Random, bot_user_id: int, application_id: int, bot_name: str = "shardrunner-sim"
    ) -> None:
        self._rng = rng
        self._bot_id = bot_user_id
        self._bot_id_str = str(bot_user_id)
        self._application_id = application_id
        self._bot_name = bot_name
        self._now_ms = START_MS
        # The 22 low bits of minted snowflakes: Discord's worker/process/increment, here a counter.
        self._increment = 0
        self._guild_count = 0
        self._recent: dict[int, deque[_RecentMessage]] = {}
        self._dm_partners: list[tuple[int, int]] = []  # (user id, DM channel id)

    @property
    def now_ms(self) -> int:
        """The virtual clock, UNIX ms; timestamps and snowflakes of new messages use it."""
        return self._now_ms

    def advance_clock(self, now_ms: int) -> None:
        """Move the virtual clock forward to `now_ms` (never backward, so message ids stay ordered).

        Tests leave the clock alone to stay reproducible; a live server may feed it wall-clock time.
        """
        self._now_ms = max(self._now_ms, now_ms)

    def _tick(self) -> int:
        # Events of a busy shard arrive milliseconds apart.
        self._now_ms += self._rng.randint(1, 40)
        return self._now_ms

    def _mint(self, at_ms: int) -> int:
        self._increment = (self._increment + 1) & _LOW_MASK
        return snowflake(at_ms, self._increment)

    def _pick_member(self, model: GuildModel) -> int:
        ids = model.member_ids
        if len(ids) == 1:
            return ids[0]
        rng = self._rng
        # Chat is dominated by a few regulars: most traffic comes from the first few dozen members.
        if rng.random() < 0.7:
            return ids[1 + rng.randrange(min(len(ids) - 1, 40))]
        return ids[1 + rng.randrange(len(ids) - 1)]

    def _dm_partner(self) -> tuple[int, int]:
        rng = self._rng
        if len(self._dm_partners) < _MAX_DM_PARTNERS and (not self._dm_partners or rng.random() < 0.2):
            uid = snowflake(
                rng.randint(_USER_CREATED_MIN_MS, _USER_CREATED_MAX_MS), rng.getrandbits(_LOW_BITS)
            )
            channel = snowflake(rng.randint(_USER_CREATED_MAX_MS, START_MS), rng.getrandbits(_LOW_BITS))
            self._dm_partners.append((uid, channel))
        return rng.choice(self._dm_partners)

    def _text_channel(self, model: GuildModel) -> int:
        ids = model.channel_ids
        if not ids:
            raise ValueError(f"guild {model.id} has no text channel")
        # Half the chatter happens in #general.
        return ids[0] if self._rng.random() < 0.5 else self._rng.choice(ids)
