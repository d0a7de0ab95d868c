"""Discord's platform: the shard (one Gateway v10 connection) and what plugs it into the cluster.

| module | holds |
|---|---|
| :mod:`.shard` | :class:`DiscordShard`: the reconnect loop and its state machine |
| :mod:`.receive` | the hot path (inflate, envelope, routing key, sink), control ops, heartbeats |
| :mod:`.send` | IDENTIFY and the commands bots send, within the outbound limit |
| :mod:`.views` | the msgspec views of the payloads and their decoders, built once |
| :mod:`.advice` | what a fatal close code means for the user (:class:`ShardFatalError`) |
| :mod:`.rest` | ``GET /gateway/bot`` |
| :mod:`.options` | :class:`ShardOptions` and the part config a worker receives |
| :mod:`.platform` | ``discover()``, :class:`DiscordPlan` (supervisor), :class:`DiscordPlatform` (worker) |
"""

from __future__ import annotations

from shardrunner.gateway.discord.advice import ShardFatalError, fatal_advice
from shardrunner.gateway.discord.options import ShardOptions
from shardrunner.gateway.discord.send import PayloadTooLarge
from shardrunner.gateway.discord.shard import DiscordShard

__all__ = ["DiscordShard", "PayloadTooLarge", "ShardFatalError", "ShardOptions", "fatal_advice"]
