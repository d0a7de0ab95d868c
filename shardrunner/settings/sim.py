"""The section of ``shardrunner sim discord``: the Discord simulator (``[sim.discord]``).

Its environment variables are ``SHARDRUNNER_SIM_<NAME>`` (``SHARDRUNNER_SIM_TOKEN``, as before).
Settings whose format the simulator owns (``rate``, ``mix``, ``faults``, ``privileged_intents``,
``replay_compress``, ``refuse_shard_counts``) are kept as text here and parsed by
:func:`shardrunner.sim.discord.config.sim_config`, which validates the whole :class:`SimConfig`.
"""

from __future__ import annotations

from typing import Final

from shardrunner.protocol.discord import IDENTIFY_WINDOW_S, MAX_GUILDS_PER_SHARD, PRIVILEGED_INTENT_BITS
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_bool,
    to_float,
    to_int,
    to_names,
    to_optional_int,
    to_optional_text,
    to_optional_url,
    to_str,
    to_text,
)
from shardrunner.settings.sections import LOG_LEVELS

_ALL_PRIVILEGED: Final = ",".join(PRIVILEGED_INTENT_BITS)

SIM_DISCORD: Final = Section(
    "sim.discord",
    (
        Setting("host", to_str, "127.0.0.1", "address to listen on", metavar="HOST"),
        Setting(
            "port",
            to_int,
            8900,
            "port for REST, gateway and admin API (0: any free port, printed at start)",
            minimum=0,
            maximum=65535,
            metavar="PORT",
        ),
        Setting(
            "shards",
            to_int,
            2,
            "recommended shard count (/gateway/bot); guilds are laid out for it",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "guilds_per_shard",
            to_int,
            10,
            "guilds each of --shards shards receives (over 2500 on a shard closes 4011)",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "min_members",
            to_int,
            2,
            "smallest guild size; sizes are drawn log-uniformly between min and max",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "max_members",
            to_int,
            1000,
            "largest guild size (9000 members make a GUILD_CREATE of about 1 MB)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "rate",
            to_text,
            "10",
            "dispatches per second per shard; 0 stops the stream; 'max' in replay mode sends the script "
            "as fast as the socket takes it",
            metavar="N|max",
        ),
        Setting(
            "tick",
            to_float,
            0.01,
            "seconds between ticks of the dispatch generator and of a paced replay: smaller ticks send "
            "smaller, more even bursts",
            metavar="SECONDS",
        ),
        Setting(
            "record_sends",
            to_bool,
            False,
            "record when each dispatch was written (GET /_sim/sends), for latency measurements",
        ),
        Setting(
            "mix",
            to_text,
            "",
            "dispatch mix as NAME=WEIGHT,...",
            metavar="MIX",
            default_text="a realistic mix dominated by MESSAGE_CREATE",
        ),
        Setting(
            "dm_ratio",
            to_float,
            0.02,
            "share of DM-capable dispatches sent as direct messages (they go to shard 0)",
            metavar="RATIO",
        ),
        Setting(
            "max_concurrency",
            to_int,
            1,
            "session_start_limit.max_concurrency: identify buckets (shard_id % K)",
            minimum=1,
            metavar="K",
        ),
        Setting(
            "identify_window",
            to_float,
            IDENTIFY_WINDOW_S,
            "seconds between two identifies of one bucket (Discord: 5); lower it to run tests fast",
            metavar="SECONDS",
        ),
        Setting("session_start_total", to_int, 1000, "session_start_limit.total", minimum=0, metavar="N"),
        Setting(
            "session_start_remaining",
            to_optional_int,
            None,
            "session_start_limit.remaining at start",
            minimum=0,
            metavar="N",
            default_text="the total",
        ),
        Setting(
            "session_start_reset_after",
            to_float,
            86400.0,
            "seconds until remaining resets to the total",
            metavar="SECONDS",
        ),
        Setting(
            "heartbeat_interval",
            to_int,
            41250,
            "heartbeat_interval in HELLO, in milliseconds",
            minimum=10,
            metavar="MS",
        ),
        Setting(
            "heartbeat_request_interval",
            to_float,
            0.0,
            "seconds between op 1 heartbeat requests to each connection (0: never, the default: "
            "Discord sends op 1 rarely, and each one resets the heartbeat timeout)",
            metavar="SECONDS",
        ),
        Setting(
            "heartbeat_timeout_factor",
            to_float,
            1.5,
            "close with 4009 after interval x factor without a heartbeat",
            metavar="FACTOR",
        ),
        Setting(
            "resume_window",
            to_float,
            180.0,
            "seconds a disconnected session stays resumable",
            metavar="SECONDS",
        ),
        Setting(
            "replay_buffer", to_int, 10000, "dispatches kept per session for RESUME", minimum=1, metavar="N"
        ),
        Setting(
            "token",
            to_optional_text,
            None,
            "accept only this token (never printed)",
            secret=True,
            metavar="TOKEN",
            default_text="any well-formed bot token",
        ),
        Setting(
            "resume_gateway_url",
            to_optional_url,
            None,
            "resume_gateway_url to advertise in READY",
            metavar="URL",
            default_text="this server",
        ),
        Setting(
            "gateway_url",
            to_optional_url,
            None,
            "gateway URL to advertise in /gateway and /gateway/bot",
            metavar="URL",
            default_text="this server",
        ),
        Setting(
            "privileged_intents",
            to_text,
            _ALL_PRIVILEGED,
            "privileged intents the application may use (any of "
            f"{', '.join(PRIVILEGED_INTENT_BITS)}, or none); asking for others closes 4014",
            metavar="NAMES",
        ),
        Setting("seed", to_int, 1, "seed of every random choice", metavar="N"),
        Setting("fault_rate", to_float, 0.0, "random faults per connection per minute", metavar="N"),
        Setting(
            "faults",
            to_names,
            "reconnect,invalid_session,drop,close,zombie,stall,garbage",
            "kinds of random fault to draw from",
            metavar="KINDS",
        ),
        Setting(
            "replay",
            to_int,
            0,
            "replay mode: this many dispatches per shard, compressed before the server starts",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "replay_compress",
            to_text,
            "zlib-stream",
            "compressions to prepare in replay mode: any of zlib-stream, zstd-stream, none",
            metavar="NAMES",
        ),
        Setting(
            "replay_segment",
            to_int,
            256,
            "dispatches per independently compressed segment in replay mode",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "max_guilds_per_shard",
            to_int,
            MAX_GUILDS_PER_SHARD,
            "an IDENTIFY whose shard would hold more guilds closes 4011, and a guild join that would "
            "put a live session over it is refused",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "recommend_per",
            to_int,
            1000,
            "/gateway/bot recommends max(--shards, ceil(guilds / N)) shards, rounded up to --shard-multiple",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "shard_multiple",
            to_int,
            1,
            "shard counts must be a multiple of K (when above 1): another num_shards closes 4010",
            minimum=1,
            metavar="K",
        ),
        Setting(
            "guild_growth",
            to_float,
            0.0,
            "guilds that join per second at run time, each a GUILD_CREATE to its shard of every "
            "live layout (0: none); settable at run time",
            minimum=0,
            metavar="PER_SECOND",
        ),
        Setting(
            "track_dispatches",
            to_bool,
            False,
            "record the dispatch id of every seq of every live session (GET /_sim/dispatches), to "
            "count exactly-once delivery across sessions; settable at run time",
        ),
        Setting(
            "refuse_shard_counts",
            to_text,
            "",
            "refuse every IDENTIFY with one of these num_shards (comma-separated), as --refuse-code says",
            metavar="COUNTS",
            default_text="none",
        ),
        Setting(
            "refuse_code",
            to_int,
            0,
            "how --refuse-shard-counts refuses: 0 answers op 9 false, any other value closes with "
            "that code (4011, for instance); settable at run time",
            minimum=0,
            metavar="CODE",
        ),
        Setting("log_level", str, "info", "log level", choices=LOG_LEVELS),
    ),
    help="the Discord gateway simulator",
    env_prefix="SHARDRUNNER_SIM_",
)

#: The sections of ``shardrunner sim discord``.
SIM_DISCORD_SECTIONS: Final = (SIM_DISCORD,)
