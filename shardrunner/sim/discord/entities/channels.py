"""A guild's categories, text and voice channels, and the voice states in them."""

from __future__ import annotations

from shardrunner.sim.discord.entities.core import GuildModel
from shardrunner.sim.discord.entities.ids import (
    _DAY_MS,
    JSON,
    START_MS,
    _created_ms,
    _derived_id,
    _hex32,
    _mix,
    snowflake,
)
from shardrunner.sim.discord.entities.members import _Members
from shardrunner.sim.discord.entities.pools import _TEXT_CHANNEL_NAMES, _TOPICS, _VOICE_CHANNEL_NAMES


class _Channels(_Members):
    """A guild's channels and the voice states in them."""

    @staticmethod
    def _category_ids(model: GuildModel) -> tuple[int, int]:
        # Categories are not in GuildModel (its fields are fixed), so their ids are derived.
        return _derived_id(model.id, 1), _derived_id(model.id, 2)

    def _channels(self, model: GuildModel) -> list[JSON]:
        h = _mix(model.id)
        text_cat, voice_cat = self._category_ids(model)
        everyone = str(model.id)
        channels: list[JSON] = [
            {
                "id": str(text_cat),
                "type": 4,
                "name": "Text Channels",
                "position": 0,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "flags": 0,
            },
            {
                "id": str(voice_cat),
                "type": 4,
                "name": "Voice Channels",
                "position": 1,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "flags": 0,
            },
        ]
        for i, cid in enumerate(model.channel_ids):
            name = "general" if i == 0 else _TEXT_CHANNEL_NAMES[(h + i) % len(_TEXT_CHANNEL_NAMES)]
            if i and name in {c["name"] for c in channels}:
                name = f"{name}-{i}"
            ch = _mix(cid)
            last_ms = START_MS - ch % (30 * _DAY_MS)
            created = _created_ms(cid)
            # Announcement-style channels are read-only for @everyone: one real overwrite.
            overwrites = (
                [{"id": everyone, "type": 0, "allow": "0", "deny": "2048"}] if name == "announcements" else []
            )
            channels.append(
                {
                    "id": str(cid),
                    "type": 0,
                    "name": name,
                    "position": i,
                    "permission_overwrites": overwrites,
                    "parent_id": str(text_cat),
                    "topic": _TOPICS[ch % len(_TOPICS)],
                    "nsfw": False,
                    "last_message_id": str(snowflake(last_ms, ch >> 42)) if last_ms > created else None,
                    "rate_limit_per_user": 0,
                    "flags": 0,
                }
            )
        for i, cid in enumerate(model.voice_channel_ids):
            channels.append(
                {
                    "id": str(cid),
                    "type": 2,
                    "name": _VOICE_CHANNEL_NAMES[(h + i) % len(_VOICE_CHANNEL_NAMES)]
                    if i
                    else _VOICE_CHANNEL_NAMES[0],
                    "position": i,
                    "permission_overwrites": [],
                    "parent_id": str(voice_cat),
                    "nsfw": False,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                    "bitrate": 64000,
                    "user_limit": 0 if i % 2 == 0 else 10,
                    "rtc_region": None,
                    "flags": 0,
                }
            )
        return channels

    def _guild_voice_states(self, model: GuildModel, online: list[int]) -> list[JSON]:
        """A few online members sitting in voice; only members listed in the payload (hikari needs that)."""
        if not model.voice_channel_ids:
            return []
        states: list[JSON] = []
        for uid in online:
            h = _mix(uid ^ model.id ^ 0x7C)
            if h % 25:
                continue
            states.append(
                {
                    "user_id": str(uid),
                    "channel_id": str(model.voice_channel_ids[(h >> 8) % len(model.voice_channel_ids)]),
                    "session_id": _hex32(h),
                    "deaf": False,
                    "mute": False,
                    "self_deaf": (h >> 16) % 6 == 0,
                    "self_mute": (h >> 19) % 3 == 0,
                    "self_video": False,
                    "self_stream": False,
                    "suppress": False,
                    "request_to_speak_timestamp": None,
                }
            )
            if len(states) >= 25:
                break
        return states
