"""The dispatch mix and :class:`EntityFactory`, the top layer: one ``d`` per event name."""

from __future__ import annotations

import random
from collections.abc import Callable

from shardrunner.sim.discord.entities.core import GuildModel
from shardrunner.sim.discord.entities.ids import JSON
from shardrunner.sim.discord.entities.messages import _Messages
from shardrunner.sim.discord.entities.pools import _CUSTOM_STATUSES, _GAMES, _NICKS

#: Default dispatch mix: event name -> relative weight. MESSAGE_CREATE dominates, as it does for a
#: bot with the message content intent; presences come next (every status change of every member).
DEFAULT_MIX: dict[str, float] = {
    "MESSAGE_CREATE": 0.42,
    "PRESENCE_UPDATE": 0.22,
    "TYPING_START": 0.14,
    "GUILD_MEMBER_UPDATE": 0.04,
    "MESSAGE_UPDATE": 0.05,
    "MESSAGE_DELETE": 0.03,
    "MESSAGE_REACTION_ADD": 0.07,
    "VOICE_STATE_UPDATE": 0.03,
}


#: Events that can happen outside a guild (DMs).
DM_CAPABLE: frozenset[str] = frozenset(
    {"MESSAGE_CREATE", "TYPING_START", "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_UPDATE",
     "MESSAGE_DELETE"}
)  # fmt: skip


#: Every event name :meth:`EntityFactory.event` can build.
SUPPORTED_EVENTS: frozenset[str] = frozenset(DEFAULT_MIX) | DM_CAPABLE


class EntityFactory(_Messages):
    """Builds Discord objects. All randomness comes from `rng`, so a seed reproduces a run."""

    def __init__(
        self, rng: random.Random, bot_user_id: int, application_id: int, bot_name: str = "shardrunner-sim"
    ) -> None:
        super().__init__(rng, bot_user_id, application_id, bot_name)
        self._builders: dict[str, Callable[[GuildModel | None], JSON]] = {
            "MESSAGE_CREATE": self._message_create,
            "PRESENCE_UPDATE": self._presence_update,
            "TYPING_START": self._typing_start,
            "GUILD_MEMBER_UPDATE": self._guild_member_update,
            "MESSAGE_UPDATE": self._message_update,
            "MESSAGE_DELETE": self._message_delete,
            "MESSAGE_REACTION_ADD": self._reaction_add,
            "MESSAGE_REACTION_REMOVE": self._reaction_remove,
            "VOICE_STATE_UPDATE": self._voice_state_update,
        }

    def event(self, name: str, model: GuildModel | None) -> JSON:
        """The `d` of one dispatch of type `name` in guild `model` (None: a DM, only for DM_CAPABLE names).

        Supported: every name in :data:`SUPPORTED_EVENTS`. MESSAGE_UPDATE, MESSAGE_DELETE and the
        reaction events target one of the last few messages created in that guild (or DM) when there
        is one, so a client's message cache sees edits and reactions to messages it knows.
        """
        builder = self._builders.get(name)
        if builder is None:
            raise ValueError(f"unsupported event {name!r}; supported: {sorted(SUPPORTED_EVENTS)}")
        if model is None and name not in DM_CAPABLE:
            raise ValueError(f"{name} only happens in a guild, give a GuildModel")
        return builder(model)

    def _presence_update(self, model: GuildModel | None) -> JSON:
        assert model is not None  # event() refuses guild-only events without a model
        now = self._tick()
        rng = self._rng
        uid = self._pick_member(model)
        status = rng.choices(("online", "idle", "dnd", "offline"), (5, 3, 1, 2))[0]
        activities: list[JSON] = []
        client_status: JSON = {}
        if status != "offline":
            client_status[rng.choice(("desktop", "desktop", "mobile", "web"))] = status
            roll = rng.random()
            if roll < 0.3:
                game = rng.choice(_GAMES)
                activity_id = f"{rng.getrandbits(64):016x}"
                activities.append(
                    {
                        "type": 0,
                        "name": game,
                        "id": activity_id,
                        "created_at": now,
                        "timestamps": {"start": now},
                    }
                )
            elif roll < 0.5:
                state = rng.choice(_CUSTOM_STATUSES)
                activities.append(
                    {"type": 4, "name": "Custom Status", "state": state, "id": "custom", "created_at": now}
                )
        return {
            "user": {"id": str(uid)},
            "status": status,
            "activities": activities,
            "client_status": client_status,
            "guild_id": str(model.id),
        }

    def _guild_member_update(self, model: GuildModel | None) -> JSON:
        assert model is not None
        self._tick()
        rng = self._rng
        ctx = self._ctx(model)
        uid = self._pick_member(model)
        member = self._member(ctx, uid)
        # The change itself: a new nickname, or a role gained or lost.
        if rng.random() < 0.5 or not ctx.role_pool:
            member["nick"] = rng.choice((None, *_NICKS))
        else:
            role = rng.choice(ctx.role_pool)
            roles: list[str] = member["roles"]
            if role in roles:
                roles.remove(role)
            else:
                roles.append(role)
        member["guild_id"] = ctx.id_str
        return member

    def _voice_state_update(self, model: GuildModel | None) -> JSON:
        assert model is not None
        self._tick()
        rng = self._rng
        uid = self._pick_member(model)
        joined = bool(model.voice_channel_ids) and rng.random() < 0.7
        return {
            "guild_id": str(model.id),
            "channel_id": str(rng.choice(model.voice_channel_ids)) if joined else None,
            "user_id": str(uid),
            "member": self._member(self._ctx(model), uid),
            "session_id": f"{rng.getrandbits(128):032x}",
            "deaf": False,
            "mute": False,
            "self_deaf": joined and rng.random() < 0.1,
            "self_mute": joined and rng.random() < 0.3,
            "self_video": False,
            "self_stream": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
