"""Discord's rules for a reshard: when one is due, to how many shards, and what refuses it.

A shard holds at most ``capacity`` guilds (Discord: 2,500; past it the gateway closes 4011). The
fill is guilds / (shards x capacity). A reshard is due when the fill reaches ``reshard_at``; it goes
to the larger of ``/gateway/bot``'s recommendation and the count that brings the fill down to
``target``, rounded up to the multiple Discord assigns large bots (``max_concurrency`` when above
1, e.g. 16: another count meets 4010). It is refused, in one sentence, when the count is not such a
multiple, cannot hold the guilds, is the count already running, or needs more session starts than
``session_start_limit.remaining`` leaves after ``reserve`` (kept for the reconnects of the running
shards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shardrunner.gateway.platform import Resize
from shardrunner.protocol.discord import MAX_GUILDS_PER_SHARD


@dataclass(frozen=True, slots=True)
class DiscordRules:
    """The reshard settings of the ``discord`` section."""

    reshard_at: float = 0.8
    target: float = 0.5
    reserve: int = 10
    capacity: int = MAX_GUILDS_PER_SHARD


def _multiple_of(count: int, multiple: int) -> int:
    return max(multiple, math.ceil(count / multiple) * multiple)


def propose(
    *,
    rules: DiscordRules,
    current: int,
    requested: int | None,
    recommended: int,
    guilds: int,
    max_concurrency: int,
    identify_window: float,
    remaining: int,
    reset_after_ms: int,
    auto: bool,
) -> Resize | None:
    """The reshard of a bot running ``current`` shards that hold ``guilds`` guilds, to ``requested``
    shards (None: Discord's count, as above). With ``auto``, None unless the fill is at
    ``reshard_at`` or above."""
    cap = rules.capacity
    fill = guilds / (current * cap)
    if auto and fill < rules.reshard_at:
        return None
    multiple = max_concurrency if max_concurrency > 1 else 1
    if requested is None:
        needed = math.ceil(guilds / (cap * rules.target)) if guilds else 1
        count = _multiple_of(max(recommended, needed, 1), multiple)
        if auto:
            reason = (
                f"the shards are {fill:.0%} full (at most {cap} guilds each; resharding at "
                f"{rules.reshard_at:.0%})"
            )
        else:
            reason = "Discord's count"
        reason += (
            f": /gateway/bot recommends {recommended}, {needed} shards bring the fill to {rules.target:.0%}"
            if needed != 1
            else f": /gateway/bot recommends {recommended}, 1 shard holds them at {rules.target:.0%} or less"
        )
        if multiple > 1:
            reason += f", in multiples of {multiple}"
    else:
        count = requested
        reason = f"{count} shards, as asked"
    refused = None
    if count < 1:
        refused = f"a bot needs at least one shard, not {count}"
    elif count == current:
        refused = f"the bot already runs {current} shards"
    elif count % multiple:
        lower = count // multiple * multiple
        choices = f"{lower} or {lower + multiple}" if lower else str(multiple)
        refused = (
            f"Discord assigns this bot shard counts in multiples of {multiple} (its max_concurrency): "
            f"{count} is not one (Discord would close it with 4010); use {choices}"
        )
    elif guilds > count * cap:
        refused = (
            f"{count} shards cannot hold {guilds} guilds (at most {cap} each: Discord would close "
            f"them with 4011); use at least {_multiple_of(math.ceil(guilds / cap), multiple)}"
        )
    elif remaining < count + rules.reserve:
        refused = (
            f"Discord allows {remaining} more session starts today (session_start_limit.remaining) "
            f"but the reshard needs {count} plus {rules.reserve} kept for reconnects (--reshard-reserve); "
            f"wait {reset_after_ms // 1000} s for the limit to reset"
        )
    rounds = math.ceil(max(count, 1) / max_concurrency)
    return Resize(
        platform="discord",
        current=current,
        count=count,
        keys=guilds,
        capacity=cap,
        fill=fill,
        new_fill=guilds / (max(count, 1) * cap),
        starts_needed=max(count, 0),
        starts_remaining=remaining,
        reserve=rules.reserve,
        seconds=(rounds - 1) * identify_window,
        reason=reason,
        refused=refused,
    )
