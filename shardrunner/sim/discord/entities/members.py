"""Guild members (derived from the user id) and GUILD_MEMBERS_CHUNK."""

from __future__ import annotations

from shardrunner.sim.discord.entities.core import GuildModel, _GuildCtx
from shardrunner.sim.discord.entities.ids import _DAY_MS, JSON, START_MS, _created_ms, _iso, _mix
from shardrunner.sim.discord.entities.pools import _NICKS
from shardrunner.sim.discord.entities.users import _Users


class _Members(_Users):
    """Guild members and GUILD_MEMBERS_CHUNK."""

    @staticmethod
    def _ctx(model: GuildModel) -> _GuildCtx:
        roles = [str(r) for r in model.role_ids]
        return _GuildCtx(
            id=model.id,
            id_str=str(model.id),
            created_ms=_created_ms(model.id),
            bot_role=roles[1] if len(roles) > 1 else None,
            booster_role=roles[2] if len(roles) > 2 else None,
            role_pool=roles[3:],
        )

    def _member(self, ctx: _GuildCtx, uid: int, *, with_user: bool = True) -> JSON:
        """A guild member (with its user unless `with_user` is false); derived from the ids alone."""
        h = _mix(uid ^ ctx.id)
        roles: list[str]
        premium_since: str | None = None
        if uid == self._bot_id:
            roles = [ctx.bot_role] if ctx.bot_role else []
        else:
            pool = ctx.role_pool
            pick = h & 7
            if not pool or pick < 3:
                roles = []
            elif pick < 6 or len(pool) == 1:
                roles = [pool[(h >> 3) % len(pool)]]
            else:
                first = (h >> 3) % len(pool)
                roles = [pool[first], pool[(first + 1 + (h >> 9) % (len(pool) - 1)) % len(pool)]]
            if ctx.booster_role and (h >> 16) % 40 == 0:
                roles.append(ctx.booster_role)
                premium_since = _iso(START_MS - (h >> 20) % (300 * _DAY_MS))
        # Joined after both the user and the guild existed, and (for old guilds) before the clock starts.
        lo = max(ctx.created_ms, _created_ms(uid))
        hi = max(lo + _DAY_MS, START_MS)
        joined_ms = lo + (h >> 24) % (hi - lo)
        member: JSON = {
            "roles": roles,
            "nick": _NICKS[(h >> 40) % len(_NICKS)] if (h >> 44) % 12 == 0 else None,
            "avatar": None,
            "joined_at": _iso(joined_ms),
            "premium_since": premium_since,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self._user(uid)
        return member

    def members_chunk(
        self,
        model: GuildModel,
        *,
        chunk_index: int,
        chunk_count: int,
        member_ids: list[int],
        nonce: str | None,
    ) -> JSON:
        """GUILD_MEMBERS_CHUNK `d`: full members (with user) for `member_ids`.

        Ids that are not members of the guild go to ``not_found``, as Discord does for ``user_ids``
        queries.
        """
        ctx = self._ctx(model)
        known = set(model.member_ids)
        member = self._member
        chunk: JSON = {
            "guild_id": ctx.id_str,
            "members": [member(ctx, uid) for uid in member_ids if uid in known],
            "chunk_index": chunk_index,
            "chunk_count": chunk_count,
            "not_found": [str(uid) for uid in member_ids if uid not in known],
        }
        if nonce is not None:
            chunk["nonce"] = nonce
        return chunk
