"""IDENTIFY and RESUME: how a connection gets a session, and every reason it is refused.

Refusals follow Discord: a bad token closes 4004, bad intents 4013/4014, a bad shard 4010 (a
``num_shards`` that is not a multiple of ``shard_multiple`` too), too many guilds 4011, an identify
too early in its bucket gets op 9 false (the client may identify again on the same connection), no
session starts left closes 4004. A shard count the tests told the simulator to refuse
(``refuse_shard_counts``) gets op 9 false, or a close with ``refuse_code``. A RESUME of a session
that cannot be resumed gets op 9 false; one with a seq from the future closes 4007.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from shardrunner.protocol.discord import ALL_INTENTS, PRIVILEGED_INTENTS, CloseCode
from shardrunner.sim.discord.world import token_user_id

if TYPE_CHECKING:
    from shardrunner.sim.discord.gateway import Connection


def check_token(conn: Connection, token: object) -> int | None:
    """The bot user id of ``token``, or None if the simulator does not accept it."""
    if not isinstance(token, str):
        return None
    user_id = token_user_id(token)
    expected = conn.sim.config.token
    if expected is not None and token.removeprefix("Bot ") != expected.removeprefix("Bot "):
        return None
    return user_id


async def identify(conn: Connection, d: object) -> None:
    """Handle op 2 on ``conn``, which has no session attached."""
    sim = conn.sim
    cfg = sim.config
    if not isinstance(d, dict):
        await conn.close(CloseCode.DECODE_ERROR, "IDENTIFY without a d object.")
        return
    user_id = check_token(conn, d.get("token"))
    shard = d.get("shard", [0, 1])
    shard_ok = (
        isinstance(shard, list)
        and len(shard) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in shard)
    )
    shard_id, num_shards = (shard[0], shard[1]) if shard_ok else (-1, 0)
    record = {"shard": [shard_id, num_shards] if shard_ok else shard, "session_id": None}
    if user_id is None:
        sim.recorder.add("identifies", accepted=False, reason="authentication failed", bucket=None, **record)
        await conn.close(CloseCode.AUTHENTICATION_FAILED)
        return
    intents = d.get("intents")
    if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0 or intents & ~ALL_INTENTS:
        sim.recorder.add("identifies", accepted=False, reason="invalid intents", bucket=None, **record)
        await conn.close(CloseCode.INVALID_INTENTS)
        return
    if intents & PRIVILEGED_INTENTS & ~cfg.privileged_intents:
        sim.recorder.add("identifies", accepted=False, reason="disallowed intents", bucket=None, **record)
        await conn.close(CloseCode.DISALLOWED_INTENTS)
        return
    multiple = cfg.shard_multiple
    if (
        not shard_ok
        or num_shards < 1
        or not 0 <= shard_id < num_shards
        or (multiple > 1 and num_shards % multiple)
    ):
        sim.recorder.add("identifies", accepted=False, reason="invalid shard", bucket=None, **record)
        await conn.close(CloseCode.INVALID_SHARD)
        return
    if num_shards in cfg.refuse_shard_counts:
        sim.identifies_refused += 1
        sim.recorder.add("identifies", accepted=False, reason="refused shard count", bucket=None, **record)
        if cfg.refuse_code:
            await conn.close(cfg.refuse_code)
        else:
            conn.invalid_session(resumable=False, why="shard count refused")
        return
    guild_ids = sim.world.guilds_for(shard_id, num_shards)
    if len(guild_ids) > cfg.max_guilds_per_shard:
        sim.recorder.add("identifies", accepted=False, reason="sharding required", bucket=None, **record)
        await conn.close(CloseCode.SHARDING_REQUIRED)
        return
    limits = sim.limits
    now = time.monotonic()
    bucket = limits.bucket(shard_id)
    since = limits.too_soon(bucket, now)
    if since is not None:
        sim.recorder.add("identifies", accepted=False, reason="identify rate limit", bucket=bucket, **record)
        sim.recorder.violation(
            "identify_rate",
            None,
            f"shard {shard_id}/{num_shards} identified {since:.3f} s after the previous identify "
            f"of bucket {bucket} (window {cfg.identify_window} s)",
        )
        conn.invalid_session(resumable=False, why="identify rate limit")
        return
    if limits.starts_remaining <= 0:
        sim.recorder.add("identifies", accepted=False, reason="session start limit", bucket=bucket, **record)
        sim.recorder.violation(
            "session_start_limit", None, f"shard {shard_id}/{num_shards}: no session starts left"
        )
        await conn.close(CloseCode.AUTHENTICATION_FAILED, "Session start limit exhausted: token reset.")
        return
    limits.take(bucket, now)
    # The sessions this IDENTIFY could have resumed instead (a wasted identify when not empty).
    resumable = [
        s.id
        for s in sim.table.layouts.get(num_shards, {}).get(shard_id, [])
        if s.ended is None and s.script is None and s.user_id == user_id
    ]
    lt = d.get("large_threshold", 50)
    large_threshold = min(250, max(50, lt)) if isinstance(lt, int) else 50
    session = sim.new_session(shard_id, num_shards, user_id, intents, large_threshold, conn.mode)
    record["session_id"] = session.id
    sim.recorder.add("identifies", accepted=True, reason=None, bucket=bucket, resumable=resumable, **record)
    conn.attach(session, 0)


async def resume(conn: Connection, d: object) -> None:
    """Handle op 6 on ``conn``, which has no session attached."""
    sim = conn.sim
    if not isinstance(d, dict):
        await conn.close(CloseCode.DECODE_ERROR, "RESUME without a d object.")
        return
    sid, seq = d.get("session_id"), d.get("seq")
    user_id = check_token(conn, d.get("token"))
    session = sim.sessions.get(sid) if isinstance(sid, str) else None
    record: dict[str, Any] = {"session_id": sid, "seq": seq}
    if session is not None:
        record["shard"] = [session.shard_id, session.num_shards]
    if user_id is None:
        sim.recorder.add("resumes", accepted=False, reason="authentication failed", replayed=0, **record)
        await conn.close(CloseCode.AUTHENTICATION_FAILED)
        return
    if seq is None:
        seq = 0
    reason = None
    if session is None:
        reason = "unknown session"
    elif session.ended is not None:
        reason = f"session invalidated ({session.ended})"
    elif session.user_id != user_id:
        reason = "session belongs to another token"
    elif not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        reason = "seq is not a number"
    elif seq > session.last_seq:
        sim.recorder.add("resumes", accepted=False, reason="invalid seq", replayed=0, **record)
        sim.end_session(session, "resume with a seq from the future")
        await conn.close(CloseCode.INVALID_SEQ)
        return
    elif seq + 1 < session.oldest_seq:
        reason = f"seq {seq} is older than the replay buffer (oldest {session.oldest_seq})"
    if reason is not None or session is None:
        sim.recorder.add("resumes", accepted=False, reason=reason, replayed=0, **record)
        if session is not None and session.ended is None and session.user_id == user_id:
            # The bot's own session can no longer be resumed by anyone: it is over. A refused
            # RESUME with another bot's token leaves the session alone.
            sim.end_session(session, reason or "resume refused")
        conn.invalid_session(resumable=False, why="resume refused")
        return
    old = session.conn
    if old is not None and old is not conn:
        # A session lives on one connection: the newer one wins, as on Discord.
        old.detach()
        old.drop()
    sim.recorder.add("resumes", accepted=True, reason=None, replayed=session.last_seq - seq, **record)
    # RESUMED takes the next seq of the session, after everything to be replayed: the connection
    # streams the replay, RESUMED, then whatever follows, as Discord does.
    session.log_resumed()
    conn.attach(session, seq)
