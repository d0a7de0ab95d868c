"""The ``discord`` section of ``shardrunner start``: the bot, its gateway connections, their shard
set and its resharding, and the state cache. The token is secret: never printed, masked in every
dump and error.
"""

from __future__ import annotations

from typing import Final

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import (
    ALL_INTENTS,
    CONNECT_CONCURRENCY,
    IDENTIFY_LEAD_S,
    IDENTIFY_WINDOW_S,
    PRIVILEGED_INTENTS,
)
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_auto_int,
    to_bool,
    to_bot_token,
    to_compression,
    to_float,
    to_int,
    to_shards,
    to_url,
)

_SECONDS: Final = "SECONDS"
DEFAULT_INTENTS: Final = ALL_INTENTS & ~PRIVILEGED_INTENTS

#: The Discord platform: the bot, its gateway connections and their shard set.
DISCORD: Final = Section(
    "discord",
    (
        Setting(
            "token",
            to_bot_token,
            None,
            "the bot token (never printed)",
            secret=True,
            metavar="TOKEN",
            default_text="none, required unless --sim",
        ),
        Setting(
            "api_url",
            to_url,
            "https://discord.com/api/v10",
            "REST base URL (for proxies and tests)",
            metavar="URL",
        ),
        Setting(
            "shards",
            to_shards,
            "auto",
            "shard count, or auto for Discord's recommendation from /gateway/bot",
            minimum=1,
            metavar="N|auto",
        ),
        Setting(
            "intents",
            to_int,
            DEFAULT_INTENTS,
            "gateway intents bitmask",
            minimum=0,
            metavar="BITS",
            default_text=f"{DEFAULT_INTENTS}, every non-privileged intent",
        ),
        Setting(
            "compression",
            to_compression,
            Compression.ZLIB_STREAM,
            "gateway transport compression",
            choices=tuple(
                c.value for c in (Compression.ZLIB_STREAM, Compression.ZSTD_STREAM, Compression.NONE)
            ),
        ),
        Setting(
            "large_threshold",
            to_int,
            250,
            "members above which a guild is large (its offline members are not sent)",
            minimum=50,
            maximum=250,
            metavar="N",
        ),
        Setting(
            "max_concurrency",
            to_auto_int,
            None,
            "identify buckets",
            minimum=1,
            metavar="N|auto",
            default_text="session_start_limit.max_concurrency from /gateway/bot",
        ),
        Setting(
            "identify_window",
            to_float,
            IDENTIFY_WINDOW_S,
            "seconds between identifies of one bucket (Discord: 5; lower only against the simulator)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "identify_lead",
            to_float,
            IDENTIFY_LEAD_S,
            "seconds before its identify turn a shard connects (a couple of handshake times: the "
            "handshake overlaps the wait, and the IDENTIFY goes out as the bucket allows it)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "connect_concurrency",
            to_int,
            CONNECT_CONCURRENCY,
            "handshakes (connect to HELLO) in flight per worker; the others wait, resumes first",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "auto_reshard",
            to_bool,
            True,
            "reshard by itself when the shards' fill reaches --reshard-at (checked every --reshard-check)",
        ),
        Setting(
            "reshard_at",
            to_float,
            0.8,
            "the fill (guilds / (shards x max guilds per shard)) at which a reshard is due",
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            metavar="FRACTION",
        ),
        Setting(
            "reshard_target",
            to_float,
            0.5,
            "the fill a reshard brings the shards down to (or /gateway/bot's count, if larger)",
            minimum=0,
            maximum=1,
            exclusive_minimum=True,
            metavar="FRACTION",
        ),
        Setting(
            "reshard_check",
            to_float,
            300.0,
            "seconds between two asks of /gateway/bot and checks of the fill",
            minimum=1,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_reserve",
            to_int,
            10,
            "session starts a reshard leaves for the running shards' reconnects; it is refused "
            "when session_start_limit.remaining is below the new count plus this",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "reshard_overlap",
            to_float,
            1.0,
            "seconds each step of a reshard's switch lasts: the most one shard set may lag the "
            "other without a loss or a duplicate",
            minimum=0.05,
            maximum=30,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_timeout",
            to_float,
            0.0,
            "seconds the new shards may take to be ready before the reshard is aborted (0: twice "
            "the identify limit's time for them, plus 5 minutes)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "reshard_drain",
            to_float,
            600.0,
            "seconds the old shards' workers keep, after the switch, the events durable groups "
            "have not acknowledged (a bot down through a reshard gets them when it returns)",
            minimum=0,
            metavar=_SECONDS,
        ),
        Setting(
            "max_guilds_per_shard",
            to_int,
            2500,
            "guilds one shard may hold (Discord: 2500, closing 4011 beyond; lower only against "
            "the simulator)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "state_cache",
            to_bool,
            False,
            "keep each session's READY and guilds in the workers, for bots (adapters) that start "
            "later to fetch (docs/adapters.md)",
        ),
        Setting(
            "state_cache_log",
            to_int,
            64,
            "structural events kept per guild after its GUILD_CREATE before they are folded into it",
            minimum=1,
            metavar="N",
        ),
    ),
    help="the Discord bot and its shards",
)

#: The sections of ``shardrunner start``, in the order of ``--help`` and the example config.
