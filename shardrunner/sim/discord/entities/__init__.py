"""Realistic Discord objects for the gateway simulator, as plain dicts ready for ``msgspec.json.encode``.

Everything here is shaped by what real clients parse, not only by the API documentation:
discord.py 2.7 (``discord/state.py`` and the model classes) and hikari 2.7
(``hikari/impl/entity_factory.py``, ``hikari/impl/event_factory.py``). hikari indexes many keys
directly, so every key it reads unconditionally is always present, even when its value is null.

Determinism. All randomness comes from the ``random.Random`` given to :class:`EntityFactory`, and the
clock is virtual (it starts at :data:`START_MS` and moves forward a few milliseconds per event), so a
seed reproduces a run byte for byte. A live server that wants wall-clock timestamps calls
:meth:`EntityFactory.advance_clock`.

Identity. What a user or a member looks like (username, avatar, roles, join date, presence) is derived
from its id with a cheap integer hash, not drawn from the generator. The same user therefore looks the
same in every payload (GUILD_CREATE, MESSAGE_CREATE, member chunks...) without the factory storing
anything per user, and :meth:`EntityFactory.guild_create` is a pure function of its model: the
GUILD_CREATE sent after a reconnect describes the same guild.

Sizes. A member is about 370 bytes of JSON and a presence about 150 (activities included). About a
quarter of members are online. A guild is "large" when it has more members than the client's
``large_threshold`` (Discord's rule). A guild that is not large lists every member, plus a presence
for each online one, so 250 members come to about 110 KB. A large guild lists only the bot and its
online members, as Discord does for clients with the presence intent: at most ``member_count // 3``
of them and never more than 3,000, each with its presence. Its GUILD_CREATE therefore grows by
about 130 bytes per member (3,000 members: about 390 KB; 9,000: about 1.2 MB) and stops growing at
about 1.6 MB once the cap applies (12,000 members and up). The rest of a large guild comes through
GUILD_MEMBERS_CHUNK (:meth:`EntityFactory.members_chunk`).

Layout. :class:`EntityFactory` is one class built in layers, one module per kind of entity, each
layer using the ones before it: ``core`` (the guild model, the generator, the clock, minted ids),
``users`` (users, presences, the application), ``members``, ``channels`` (and voice states),
``guilds`` (GUILD_CREATE, READY), ``messages`` (messages, reactions, typing) and ``dispatch`` (the
mix and ``event``); ``ids`` and ``pools`` hold the helpers and word pools they share. Names with a
leading underscore are private to this package; what other code uses is exported here.
"""

from __future__ import annotations

from shardrunner.sim.discord.entities.core import GuildModel
from shardrunner.sim.discord.entities.dispatch import DEFAULT_MIX, DM_CAPABLE, SUPPORTED_EVENTS, EntityFactory
from shardrunner.sim.discord.entities.ids import EPOCH_MS, START_MS, snowflake

__all__ = [
    "DEFAULT_MIX",
    "DM_CAPABLE",
    "EPOCH_MS",
    "START_MS",
    "SUPPORTED_EVENTS",
    "EntityFactory",
    "GuildModel",
    "snowflake",
]
