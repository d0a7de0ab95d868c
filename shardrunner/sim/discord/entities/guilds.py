"""Guild models, roles, emojis and stickers; GUILD_CREATE and READY."""

from __future__ import annotations

from typing import Final

from shardrunner.sim.discord.entities.channels import _Channels
from shardrunner.sim.discord.entities.core import GuildModel
from shardrunner.sim.discord.entities.ids import (
    _DAY_MS,
    _LOW_BITS,
    _LOW_MASK,
    _USER_CREATED_MAX_MS,
    _USER_CREATED_MIN_MS,
    JSON,
    START_MS,
    _created_ms,
    _derived_id,
    _hex32,
    _iso,
    _mix,
    snowflake,
)
from shardrunner.sim.discord.entities.pools import (
    _EMOJI_NAMES,
    _EVERYONE_PERMISSIONS,
    _GEO_REGIONS,
    _GUILD_ADJECTIVES,
    _GUILD_NOUNS,
    _ROLE_SPECS,
)

#: Online members a large guild's GUILD_CREATE carries at most (with their presences).
_LARGE_GUILD_MEMBER_CAP: Final = 3000


class _Guilds(_Channels):
    """Guild models, GUILD_CREATE and READY."""

    def guild_model(self, guild_id: int, members: int) -> GuildModel:
        """A new guild with `members` members (bot included), a few text and voice channels and roles."""
        if members < 1:
            raise ValueError(f"a guild has at least one member (the bot), got {members}")
        rng = self._rng
        created = _created_ms(guild_id)
        low = guild_id & _LOW_MASK

        taken = {guild_id}

        def later_ids(count: int) -> list[int]:
            # Channels and roles come after the guild; sharing its low bits keeps them apart from
            # the ids the server mints for other guilds.
            ids: list[int] = []
            while len(ids) < count:
                new = snowflake(created + rng.randint(1, 200 * _DAY_MS), low)
                if new not in taken:
                    taken.add(new)
                    ids.append(new)
            return sorted(ids)

        channel_ids = later_ids(rng.randint(3, 6))
        voice_channel_ids = later_ids(rng.randint(1, 3))
        # @everyone, the bot's managed role, the booster role, then 2-5 community roles.
        role_ids = [guild_id, *later_ids(rng.randint(4, 7))]
        lo, hi = _USER_CREATED_MIN_MS, _USER_CREATED_MAX_MS
        randint, getrandbits = rng.randint, rng.getrandbits
        member_ids = [self._bot_id]
        seen = {self._bot_id}
        while len(member_ids) < members:
            uid = snowflake(randint(lo, hi), getrandbits(_LOW_BITS))
            if uid not in seen:
                seen.add(uid)
                member_ids.append(uid)
        name = f"{rng.choice(_GUILD_ADJECTIVES)} {rng.choice(_GUILD_NOUNS)}"
        self._guild_count += 1
        # Nobody can have posted before they joined; joins run at most a day past the guild's birth.
        self.advance_clock(created + 2 * _DAY_MS)
        return GuildModel(
            id=guild_id,
            name=name,
            owner_id=member_ids[1] if members > 1 else self._bot_id,
            channel_ids=channel_ids,
            voice_channel_ids=voice_channel_ids,
            role_ids=role_ids,
            member_ids=member_ids,
            member_count=members,
        )

    def _roles(self, model: GuildModel) -> list[JSON]:
        h = _mix(model.id)
        roles: list[JSON] = []
        n = len(model.role_ids)
        for i, rid in enumerate(model.role_ids):
            tags: JSON | None = None
            if i == 0:
                name, color, hoist, mentionable, perms = "@everyone", 0, False, False, _EVERYONE_PERMISSIONS
            elif i == 1:
                name, color, hoist, mentionable, perms = self._bot_name, 0, False, False, "277025508352"
                tags = {"bot_id": self._bot_id_str}
            elif i == 2:
                name, color, hoist, mentionable, perms = "Server Booster", 0xF47FFF, False, False, "0"
                # Discord marks these boolean tags with a null value; presence of the key is the flag.
                tags = {"premium_subscriber": None}
            else:
                name, color, hoist, mentionable, perms = _ROLE_SPECS[(h + i) % len(_ROLE_SPECS)]
            role: JSON = {
                "id": str(rid),
                "name": name,
                "description": None,
                "color": color,
                "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
                "hoist": hoist,
                "icon": None,
                "unicode_emoji": None,
                # @everyone sits at 0; the bot's role is usually high, community roles below it.
                "position": 0 if i == 0 else n - i,
                "permissions": perms,
                "managed": i == 1,
                "mentionable": mentionable,
                "flags": 0,
            }
            if tags is not None:
                role["tags"] = tags
            roles.append(role)
        return roles

    @staticmethod
    def _emojis(model: GuildModel) -> list[JSON]:
        h = _mix(model.id ^ 0xE0)
        return [
            {
                "id": str(_derived_id(model.id, 10 + i)),
                "name": _EMOJI_NAMES[(h + i) % len(_EMOJI_NAMES)],
                "roles": [],
                "require_colons": True,
                "managed": False,
                "animated": (h >> (8 + i)) & 3 == 0,
                "available": True,
            }
            for i in range(2 + h % 5)
        ]

    @staticmethod
    def _stickers(model: GuildModel) -> list[JSON]:
        if _mix(model.id ^ 0x57) & 1:
            return []
        return [
            {
                "id": str(_derived_id(model.id, 30)),
                "name": "wave",
                "tags": "👋",
                "type": 2,
                "format_type": 1,
                "description": "Say hi",
                "asset": "",
                "available": True,
                "guild_id": str(model.id),
            }
        ]

    def guild_create(self, model: GuildModel, *, large_threshold: int = 250) -> JSON:
        """The full GUILD_CREATE `d`: every guild field, roles, channels, members, presences, voice states.

        A guild is large when ``member_count > large_threshold``. A guild that is not large lists every
        member; a large one lists the bot plus its online members, at most ``member_count // 3`` and
        never more than 3,000 (Discord leaves offline members of large guilds to member chunking).
        Each listed online member comes with its presence. A 250-member guild is about 110 KB, a
        9,000-member one about 1.2 MB (see the module docstring).

        This is a pure function of `model` (it draws nothing from the generator), so resending
        GUILD_CREATE after a reconnect describes the same guild.
        """
        ctx = self._ctx(model)
        gid = ctx.id_str
        large = model.member_count > large_threshold
        bot, is_online = self._bot_id, self._is_online
        online = [uid for uid in model.member_ids if uid != bot and is_online(uid)]
        if large:
            online = online[: min(model.member_count // 3, _LARGE_GUILD_MEMBER_CAP)]
            included = [bot, *online]
        else:
            included = list(model.member_ids)
        member = self._member
        members = [member(ctx, uid) for uid in included]
        # Presences in GUILD_CREATE carry neither guild_id nor a full user, as on Discord.
        presence = self._presence
        presences = [presence(uid, None) for uid in online]
        voice_states = self._guild_voice_states(model, online)
        bot_joined = next((m["joined_at"] for m in members if m["user"]["id"] == self._bot_id_str), None)
        h = _mix(model.id)
        general = str(model.channel_ids[0]) if model.channel_ids else None
        # One member in 40 boosts (see _member); the tier follows Discord's 2/7/14 boost steps.
        boosts = model.member_count // 40
        tier = 3 if boosts >= 14 else 2 if boosts >= 7 else 1 if boosts >= 2 else 0
        return {
            "id": gid,
            "name": model.name,
            "icon": _hex32(model.id) if h & 3 else None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(model.owner_id),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "mfa_level": 0,
            "nsfw_level": 0,
            "nsfw": False,
            "features": [],
            "system_channel_id": general,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": tier,
            "premium_subscription_count": boosts,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "hub_type": None,
            "lazy": True,
            "version": _created_ms(model.id),
            "joined_at": bot_joined or _iso(max(ctx.created_ms, START_MS)),
            "large": large,
            "unavailable": False,
            "member_count": model.member_count,
            "roles": self._roles(model),
            "emojis": self._emojis(model),
            "stickers": self._stickers(model),
            "channels": self._channels(model),
            "threads": [],
            "members": members,
            "presences": presences,
            "voice_states": voice_states,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
        }

    def ready(
        self,
        *,
        session_id: str,
        resume_gateway_url: str,
        shard_id: int,
        num_shards: int,
        guild_ids: list[int],
    ) -> JSON:
        """READY `d`: the bot user, unavailable guild stubs, the session and the partial application."""
        micros = self._rng.randint(40_000, 160_000)
        trace = (
            f'["gateway-prd-us-east1-b-{shard_id % 1000:04d}",{{"micros":{micros},"calls":['
            f'"id_created",{{"micros":{micros // 150},"calls":[]}},'
            f'"session_lookup_time",{{"micros":{micros // 40},"calls":[]}},'
            f'"session_lookup_finished",{{"micros":12,"calls":[]}},'
            f'"discord-sessions-prd-2-{shard_id % 97}",{{"micros":{micros - micros // 5},"calls":[]}}]}}]'
        )
        return {
            "v": 10,
            "user_settings": {},
            "user": self.bot_user(),
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": resume_gateway_url,
            "shard": [shard_id, num_shards],
            "application": self.application(),
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": list(_GEO_REGIONS),
            "auth": {},
            "_trace": [trace],
        }
