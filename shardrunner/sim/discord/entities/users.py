"""Users, presences and the application (READY ``user``, ``GET /users/@me``, ``/applications/@me``)."""

from __future__ import annotations

from typing import Final

from shardrunner.sim.discord.entities.core import _Core
from shardrunner.sim.discord.entities.ids import (
    _DAY_MS,
    _USER_CREATED_MIN_MS,
    JSON,
    START_MS,
    _created_ms,
    _hex32,
    _mix,
    snowflake,
)
from shardrunner.sim.discord.entities.pools import _CUSTOM_STATUSES, _GAMES, _NAME_HEADS, _NAME_TAILS

#: Application flags of a typical verified bot under 100 guilds: the three "limited" gateway intents.
_APPLICATION_FLAGS: Final = (1 << 13) | (1 << 15) | (1 << 19)


class _Users(_Core):
    """Users, presences and the application."""

    def bot_user(self) -> JSON:
        """The bot's own full user object, as in READY ``user`` and ``GET /users/@me``."""
        h = _mix(self._bot_id)
        return {
            "id": self._bot_id_str,
            "username": self._bot_name,
            # Bots keep 4-digit discriminators on real Discord; the simulator uses the new "0" form,
            # which both libraries handle (str(user) is then the bare name).
            "discriminator": "0",
            "global_name": None,
            "avatar": _hex32(self._bot_id) if h & 3 else None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": True,
            "flags": 0,
            "public_flags": 0,
            "premium_type": 0,
            "email": None,
            "locale": "en-US",
        }

    def application(self) -> JSON:
        """The partial application READY carries."""
        return {"id": str(self._application_id), "flags": _APPLICATION_FLAGS}

    def _owner_id(self) -> int:
        # The developer who owns the application: a user account older than the application.
        app_ms = max(_created_ms(self._application_id), _USER_CREATED_MIN_MS + _DAY_MS)
        h = _mix(self._application_id ^ 0xA5A5)
        return snowflake(_USER_CREATED_MIN_MS + h % (app_ms - _USER_CREATED_MIN_MS), h >> 42)

    def full_application(self) -> JSON:
        """``GET /applications/@me`` and ``/oauth2/applications/@me``.

        Carries every key discord.py's ``AppInfo`` and hikari's ``deserialize_application`` index
        directly (``verify_key`` must be hex, ``approximate_*_count`` must be present).
        """
        install_params = {"scopes": ["bot", "applications.commands"], "permissions": "277025508352"}
        bot = self.bot_user()
        public_bot = {k: bot[k] for k in ("id", "username", "discriminator", "global_name", "avatar", "bot")}
        public_bot["public_flags"] = 0
        return {
            "id": str(self._application_id),
            "name": self._bot_name,
            "icon": _hex32(self._application_id),
            "description": "A simulated bot for the shardrunner gateway simulator.",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": f"{_hex32(self._application_id ^ 1)}{_hex32(self._application_id ^ 2)}",
            "flags": _APPLICATION_FLAGS,
            "owner": self._user(self._owner_id()),
            "team": None,
            "bot": public_bot,
            "tags": ["utility", "simulation"],
            "install_params": install_params,
            "integration_types_config": {"0": {"oauth2_install_params": install_params}, "1": {}},
            "custom_install_url": None,
            "terms_of_service_url": None,
            "privacy_policy_url": None,
            "role_connections_verification_url": None,
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "rpc_origins": [],
            "approximate_guild_count": self._guild_count,
            "approximate_user_install_count": 0,
            "is_monetized": False,
            "storefront_available": False,
        }

    def _user(self, uid: int, h: int | None = None) -> JSON:
        """A user object as Discord embeds it in members and messages; derived from the id alone."""
        if uid == self._bot_id:
            return {
                "id": self._bot_id_str,
                "username": self._bot_name,
                "global_name": None,
                "discriminator": "0",
                "avatar": _hex32(uid) if _mix(uid) & 3 else None,
                "public_flags": 0,
                "bot": True,
            }
        if h is None:
            h = _mix(uid)
        head = _NAME_HEADS[h & 63]
        tail = _NAME_TAILS[(h >> 6) & 63]
        style = (h >> 12) & 3
        digits = (h >> 14) % 1000
        if style == 0:
            username = f"{head}{tail}"
        elif style == 1:
            username = f"{head}_{tail}{digits}"
        elif style == 2:
            username = f"{head}.{tail}"
        else:
            username = f"{head}{digits}"
        # A quarter of users never set a display name; about 40% keep the default avatar.
        global_name = f"{head.capitalize()} {tail.capitalize()}" if (h >> 24) & 3 else None
        avatar = _hex32(uid) if (h >> 26) % 5 > 1 else None
        return {
            "id": str(uid),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": avatar,
            "public_flags": 0,
        }

    @staticmethod
    def _is_online(uid: int) -> bool:
        # About a quarter of members are online at any time, typical of community servers; hashing
        # the id keeps the set stable across payloads.
        return _mix(uid ^ 0x0E1) % 4 == 0

    def _presence(self, uid: int, guild_id_str: str | None) -> JSON:
        """A member's presence as GUILD_CREATE lists it (derived from the id alone)."""
        h = _mix(uid ^ 0x0E1)
        roll = (h >> 2) % 20
        status = "online" if roll < 12 else "idle" if roll < 17 else "dnd"
        platform = (h >> 7) & 7
        if platform < 4:
            client_status = {"desktop": status}
        elif platform < 6:
            client_status = {"mobile": status}
        elif platform == 6:
            client_status = {"web": status}
        else:
            client_status = {"desktop": status, "mobile": status}
        started = START_MS - (h >> 20) % (6 * 3_600_000)
        kind = (h >> 10) % 10
        activities: list[JSON] = []
        if kind < 2:
            activities.append(
                {
                    "type": 4,
                    "name": "Custom Status",
                    "state": _CUSTOM_STATUSES[(h >> 14) % len(_CUSTOM_STATUSES)],
                    "id": "custom",
                    "created_at": started,
                }
            )
        elif kind < 4:
            activities.append(
                {
                    "type": 0,
                    "name": _GAMES[(h >> 14) % len(_GAMES)],
                    "id": f"{h & 0xFFFFFFFFFFFFFFFF:016x}",
                    "created_at": started,
                    "timestamps": {"start": started},
                }
            )
        presence: JSON = {
            "user": {"id": str(uid)},
            "status": status,
            "client_status": client_status,
            "activities": activities,
        }
        if guild_id_str is not None:
            presence["guild_id"] = guild_id_str
        return presence
