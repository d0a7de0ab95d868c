"""Messages, edits, deletes, reactions and typing: the bulk of a bot's traffic."""

from __future__ import annotations

from collections import deque
from typing import Final

from shardrunner.sim.discord.entities.core import GuildModel, _RecentMessage
from shardrunner.sim.discord.entities.guilds import _Guilds
from shardrunner.sim.discord.entities.ids import _DAY_MS, JSON, _created_ms, _iso, snowflake
from shardrunner.sim.discord.entities.pools import (
    _EMBED_FIELD_NAMES,
    _EMBED_TITLES,
    _LINKS,
    _SENTENCES,
    _SHORT_REPLIES,
    _UNICODE_REACTIONS,
)

#: Recent messages remembered per guild so edits, deletes and reactions target real messages.
_RECENT_MESSAGES: Final = 8


class _Messages(_Guilds):
    """Messages, reactions and typing: the bulk of a bot's traffic."""

    def _content(self, mention_ids: list[int], role_ids: list[str]) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.35:
            text = rng.choice(_SHORT_REPLIES)
        elif roll < 0.75:
            text = rng.choice(_SENTENCES)
        elif roll < 0.95:
            text = " ".join(rng.sample(_SENTENCES, rng.randint(2, 3)))
        else:
            text = " ".join(rng.sample(_SENTENCES, rng.randint(5, 8)))
        if rng.random() < 0.05:
            text = f"{text} {rng.choice(_LINKS)}"
        prefix = "".join(f"<@{uid}> " for uid in mention_ids) + "".join(f"<@&{rid}> " for rid in role_ids)
        return prefix + text

    def _embed(self, at_ms: int) -> JSON:
        rng = self._rng
        fields = [
            {"name": name, "value": str(rng.randint(1, 9999)), "inline": True}
            for name in rng.sample(_EMBED_FIELD_NAMES, rng.randint(1, 4))
        ]
        return {
            "type": "rich",
            "title": rng.choice(_EMBED_TITLES),
            "description": rng.choice(_SENTENCES),
            "color": rng.choice((0x5865F2, 0x57F287, 0xFEE75C, 0xEB459E, 0xED4245)),
            "fields": fields,
            "footer": {"text": "shardrunner-sim"},
            "timestamp": _iso(at_ms),
        }

    def _message(
        self,
        model: GuildModel | None,
        *,
        message_id: int,
        channel_id: int,
        author_id: int,
        content: str | None,
        edited_ms: int | None,
    ) -> JSON:
        """A full message object; `content` None draws new content (with mentions) from the generator."""
        rng = self._rng
        ctx = self._ctx(model) if model is not None else None
        mentions: list[JSON] = []
        mention_roles: list[str] = []
        if content is None:
            mention_ids: list[int] = []
            if model is not None and len(model.member_ids) > 2 and rng.random() < 0.15:
                pool = model.member_ids[1:]
                mention_ids = rng.sample(pool, min(len(pool), rng.randint(1, 2)))
            if ctx is not None and ctx.role_pool and rng.random() < 0.03:
                mention_roles = [rng.choice(ctx.role_pool)]
            content = self._content(mention_ids, mention_roles)
            for uid in mention_ids:
                user = self._user(uid)
                if ctx is not None:
                    user["member"] = self._member(ctx, uid, with_user=False)
                mentions.append(user)
        message: JSON = {
            "type": 0,
            "channel_id": str(channel_id),
            "id": str(message_id),
            "content": content,
            "author": self._user(author_id),
            "timestamp": _iso(_created_ms(message_id)),
            "edited_timestamp": _iso(edited_ms) if edited_ms is not None else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": [],
            "embeds": [self._embed(_created_ms(message_id))] if rng.random() < 0.1 else [],
            "pinned": False,
            "flags": 0,
            "components": [],
            "channel_type": 0 if model is not None else 1,
        }
        if ctx is not None:
            message["guild_id"] = ctx.id_str
            message["member"] = self._member(ctx, author_id, with_user=False)
        if edited_ms is None and rng.random() < 0.5:
            # Clients send a nonce (a snowflake of their send time) to match their own echo.
            message["nonce"] = str(
                snowflake(_created_ms(message_id) - rng.randint(50, 400), rng.getrandbits(22))
            )
        return message

    def _remember(self, key: int, recent: _RecentMessage) -> None:
        queue = self._recent.get(key)
        if queue is None:
            queue = self._recent[key] = deque(maxlen=_RECENT_MESSAGES)
        queue.append(recent)

    def _recall(self, model: GuildModel | None) -> _RecentMessage:
        """A recent message of this guild (or of the DMs), else an older one that was never seen."""
        queue = self._recent.get(model.id if model is not None else 0)
        if queue:
            return self._rng.choice(queue)
        rng = self._rng
        at = self._now_ms - rng.randint(60_000, 3 * _DAY_MS)
        if model is None:
            author, channel = self._dm_partner()
        else:
            author, channel = self._pick_member(model), self._text_channel(model)
        return _RecentMessage(self._mint(at), channel, author, rng.choice(_SENTENCES))

    def _message_create(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        if model is None:
            author, channel = self._dm_partner()
        else:
            author, channel = self._pick_member(model), self._text_channel(model)
        message = self._message(
            model,
            message_id=self._mint(now),
            channel_id=channel,
            author_id=author,
            content=None,
            edited_ms=None,
        )
        self._remember(
            model.id if model is not None else 0,
            _RecentMessage(int(message["id"]), channel, author, message["content"]),
        )
        return message

    def _message_update(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        old = self._recall(model)
        # Edits add an afterthought; the message keeps its id, author and channel.
        content = f"{old.content} (edit: {self._rng.choice(_SHORT_REPLIES)})"
        message = self._message(
            model,
            message_id=old.id,
            channel_id=old.channel_id,
            author_id=old.author_id,
            content=content,
            edited_ms=now,
        )
        return message

    def _message_delete(self, model: GuildModel | None) -> JSON:
        self._tick()
        old = self._recall(model)
        queue = self._recent.get(model.id if model is not None else 0)
        if queue is not None and old in queue:
            queue.remove(old)
        payload: JSON = {"id": str(old.id), "channel_id": str(old.channel_id)}
        if model is not None:
            payload["guild_id"] = str(model.id)
        return payload

    def _reaction_emoji(self, model: GuildModel | None) -> JSON:
        rng = self._rng
        if model is not None and rng.random() < 0.25:
            emoji = rng.choice(self._emojis(model))
            return {"id": emoji["id"], "name": emoji["name"], "animated": emoji["animated"]}
        return {"id": None, "name": rng.choice(_UNICODE_REACTIONS)}

    def _reaction(self, model: GuildModel | None, *, add: bool) -> JSON:
        self._tick()
        old = self._recall(model)
        if model is None:
            # In a DM only the partner or the bot can react; the partner is the interesting case.
            user_id = old.author_id if old.author_id != self._bot_id else self._dm_partner()[0]
        else:
            user_id = self._pick_member(model)
        payload: JSON = {
            "user_id": str(user_id),
            "type": 0,
            "message_id": str(old.id),
            "channel_id": str(old.channel_id),
            "emoji": self._reaction_emoji(model),
            "burst": False,
        }
        if add:
            payload["message_author_id"] = str(old.author_id)
            payload["burst_colors"] = []
        if model is not None:
            payload["guild_id"] = str(model.id)
            if add:
                payload["member"] = self._member(self._ctx(model), user_id)
        return payload

    def _reaction_add(self, model: GuildModel | None) -> JSON:
        return self._reaction(model, add=True)

    def _reaction_remove(self, model: GuildModel | None) -> JSON:
        return self._reaction(model, add=False)

    def _typing_start(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        if model is None:
            user_id, channel = self._dm_partner()
            return {"user_id": str(user_id), "channel_id": str(channel), "timestamp": now // 1000}
        user_id = self._pick_member(model)
        return {
            "user_id": str(user_id),
            "channel_id": str(self._text_channel(model)),
            "guild_id": str(model.id),
            # Seconds, not milliseconds: Discord's one odd timestamp.
            "timestamp": now // 1000,
            "member": self._member(self._ctx(model), user_id),
        }
