"""The session table: every session by id (what RESUME looks up) and the live ones by shard layout.

A session is created by an accepted IDENTIFY and ends as :mod:`shardrunner.sim.discord.session`
says; a detached one is kept for ``resume_window`` seconds, then ended. Ended sessions stay listed a
while longer, so that a late RESUME is told "invalidated" and ``/_sim/stats`` still shows them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Final

import msgspec

from shardrunner.protocol.compression import Compression
from shardrunner.sim.discord.config import SimConfig
from shardrunner.sim.discord.replay import PreparedScript
from shardrunner.sim.discord.session import Session
from shardrunner.sim.discord.world import World

_encode = msgspec.json.encode
#: Ended sessions stay listed (stats, op 9 answers) this long, then are forgotten.
ENDED_SESSIONS_KEPT_S: Final = 600.0


class SessionTable:
    """Sessions by id, and the live ones by ``num_shards -> shard id``: where each dispatch goes."""

    def __init__(
        self,
        world: World,
        scripts: dict[tuple[int, Compression], PreparedScript],
        resume_url: Callable[[], str],
    ) -> None:
        self.world = world
        self.scripts = scripts
        self._resume_url = resume_url
        self.by_id: dict[str, Session] = {}
        self.layouts: dict[int, dict[int, list[Session]]] = {}
        #: Sessions fed by the live generator (not scripted): without any, nothing is generated.
        self.live = 0

    def new(
        self,
        config: SimConfig,
        shard_id: int,
        num_shards: int,
        user_id: int,
        intents: int,
        large_threshold: int,
        mode: Compression,
    ) -> Session:
        """A new session with READY and its GUILD_CREATEs logged, delivered to from now on."""
        world = self.world
        guild_ids = world.guilds_for(shard_id, num_shards)
        # The replay buffer always holds at least READY and the GUILD_CREATEs.
        buffer = max(config.replay_buffer, len(guild_ids) + 1)
        session = Session(secrets.token_hex(16), shard_id, num_shards, user_id, intents, buffer)
        session.large_threshold = large_threshold
        ready = world.entities.ready(
            session_id=session.id,
            resume_gateway_url=self._resume_url(),
            shard_id=shard_id,
            num_shards=num_shards,
            guild_ids=guild_ids,
        )
        session.append(b"READY", _encode(ready))
        for gid in guild_ids:
            session.append(b"GUILD_CREATE", world.guild_create(gid, large_threshold))
        if config.replay and num_shards == config.shards:
            # Scripted only where the script's sequence numbers fit: the configured layout, and a
            # compression that was prepared.
            session.script = self.scripts.get((shard_id, mode))
        self.by_id[session.id] = session
        self.layouts.setdefault(num_shards, {}).setdefault(shard_id, []).append(session)
        if session.script is None:
            self.live += 1
        return session

    def end(self, session: Session, reason: str) -> None:
        """Invalidate ``session``: nothing is delivered to it any more, and it cannot be resumed."""
        if session.ended is not None:
            return
        by_shard = self.layouts.get(session.num_shards, {})
        peers = by_shard.get(session.shard_id, [])
        if session in peers:
            peers.remove(session)
            if session.script is None:
                self.live -= 1
        session.end(reason)

    def sweep(self, now: float, resume_window: float) -> None:
        """End sessions nobody resumed in time; forget ended ones after a while."""
        for s in list(self.by_id.values()):
            detached = s.ended is None and s.conn is None and s.detached_at is not None
            if detached and now - (s.detached_at or now) > resume_window:
                self.end(s, "resume window expired")
            elif s.ended is not None and now - s.ended_at > ENDED_SESSIONS_KEPT_S:
                del self.by_id[s.id]  # kept a while for RESUME answers and stats, then forgotten
