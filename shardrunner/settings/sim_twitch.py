"""The section of ``shardrunner sim twitch``: the Twitch chat simulator (``[sim.twitch]``).

Its environment variables are ``SHARDRUNNER_SIM_TWITCH_<NAME>``. Settings whose format the simulator
owns (``accounts``, ``channels``, ``moderator``, ``faults``...) are kept as text here and parsed by
:func:`shardrunner.sim.twitch.config.twitch_config`, which validates the whole config.
"""

from __future__ import annotations

from typing import Final

from shardrunner.protocol.twitch import NORMAL_LIMITS, PING_INTERVAL_S, VERIFIED_LIMITS
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_bool,
    to_float,
    to_int,
    to_optional_int,
    to_str,
    to_text,
)
from shardrunner.settings.sections import LOG_LEVELS

_N = NORMAL_LIMITS
_V = VERIFIED_LIMITS

SIM_TWITCH: Final = Section(
    "sim.twitch",
    (
        Setting("host", to_str, "127.0.0.1", "address to listen on", metavar="HOST"),
        Setting(
            "port",
            to_int,
            8910,
            "port of IRC over WebSocket (at /) and the admin API (0: any free port, printed at start)",
            minimum=0,
            maximum=65535,
            metavar="PORT",
        ),
        Setting(
            "irc_port",
            to_int,
            8911,
            "port of plain IRC over TCP (0: any free port, printed at start)",
            minimum=0,
            maximum=65535,
            metavar="PORT",
        ),
        Setting(
            "irc_tls_port",
            to_optional_int,
            None,
            "port of IRC over TLS, like irc.chat.twitch.tv:6697, with a self-signed certificate made at "
            "start (0: any free port, printed at start with the certificate's file)",
            minimum=0,
            maximum=65535,
            metavar="PORT",
            default_text="off",
        ),
        Setting(
            "accounts",
            to_text,
            "",
            "accept only these accounts: login:token,... or a file of login:token lines (tokens with "
            "or without 'oauth:'; never printed)",
            secret=True,
            metavar="FILE|LIST",
            default_text="any oauth:<token> for any login",
        ),
        Setting(
            "channels",
            to_text,
            "20",
            "the channels: a number N (chan0..chanN-1), or a file of names, one a line",
            metavar="N|FILE",
        ),
        Setting(
            "suspended",
            to_text,
            "",
            "channel names whose JOIN answers NOTICE msg_channel_suspended (comma-separated)",
            metavar="NAMES",
            default_text="none",
        ),
        Setting(
            "moderator",
            to_text,
            "",
            "login:#chan,... where the account is moderator (100 messages per 30 s, no per-channel or "
            "duplicate rule, not counted in the channel limit)",
            metavar="LIST",
            default_text="none",
        ),
        Setting(
            "verified",
            to_text,
            "",
            "logins of verified bots (comma-separated): the verified limits",
            metavar="LOGINS",
            default_text="none",
        ),
        Setting(
            "rate",
            to_float,
            10.0,
            "generated chat lines per second over all channels (a few busy channels, a long tail); "
            "settable at run time",
            minimum=0,
            metavar="PER_SECOND",
        ),
        Setting(
            "zipf",
            to_float,
            1.1,
            "exponent of the Zipf-like split of --rate over channels (0: even)",
            minimum=0,
            metavar="S",
        ),
        Setting(
            "shared_chat",
            to_int,
            0,
            "shared-chat groups of 3 channels (chan0-2, chan3-5...): each message copied to the others",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "duplicate_rate",
            to_float,
            0.0,
            "share of generated lines sent twice (the same id); settable at run time",
            minimum=0,
            maximum=1,
            metavar="RATIO",
        ),
        Setting(
            "swap_rate",
            to_float,
            0.0,
            "share of generated lines swapped with the next one of the channel; settable at run time",
            minimum=0,
            maximum=1,
            metavar="RATIO",
        ),
        Setting(
            "membership",
            to_bool,
            False,
            "with the membership cap, JOIN/PART of made-up chatters in channels (rooms under 1,000)",
        ),
        Setting(
            "ping_interval",
            to_float,
            PING_INTERVAL_S,
            "seconds between the server's PING :tmi.twitch.tv; settable at run time",
            minimum=0.01,
            metavar="SECONDS",
        ),
        Setting(
            "pong_timeout",
            to_float,
            10.0,
            "seconds after a PING without PONG before the server closes the connection",
            minimum=0.01,
            metavar="SECONDS",
        ),
        Setting(
            "reconnect_grace",
            to_float,
            2.0,
            "seconds between RECONNECT and the close",
            minimum=0,
            metavar="SECONDS",
        ),
        Setting(
            "slow_kill",
            to_int,
            2000,
            "kill (no close) a connection with more than N lines queued unread (0: never)",
            minimum=0,
            metavar="N",
        ),
        Setting(
            "login_limit",
            to_int,
            _N.login_count,
            "logins per --join-window per account",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "verified_login_limit",
            to_int,
            _V.login_count,
            "logins per --join-window, verified",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "join_limit", to_int, _N.join_count, "JOINs per --join-window per account", minimum=1, metavar="N"
        ),
        Setting(
            "verified_join_limit",
            to_int,
            _V.join_count,
            "JOINs per --join-window, verified",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "message_limit",
            to_int,
            _N.privmsg_count,
            "PRIVMSG per --message-window per account",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "verified_message_limit",
            to_int,
            _V.privmsg_count,
            "PRIVMSG per --message-window, verified",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "mod_message_limit",
            to_int,
            _N.privmsg_mod_count,
            "PRIVMSG per --message-window per account where moderator or broadcaster",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "channel_limit",
            to_int,
            _N.max_channels,
            "channels an account may be in at once (moderated ones do not count)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "join_window",
            to_float,
            _N.join_window,
            "seconds of the JOIN and login limits' window (Twitch's: 10; shorter for tests, same counts)",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        Setting(
            "message_window",
            to_float,
            _N.privmsg_window,
            "seconds of the PRIVMSG limits' window, moderator or not, verified or not (Twitch's: 30)",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        Setting("seed", to_int, 1, "seed of every random choice", metavar="N"),
        Setting(
            "fault_rate", to_float, 0.0, "random faults per connection per minute", minimum=0, metavar="N"
        ),
        Setting(
            "faults",
            to_text,
            "reconnect,drop,stall",
            "kinds of random fault to draw from (reconnect, drop, stall, no_pong, server_change)",
            metavar="KINDS",
        ),
        Setting("log_level", str, "info", "log level", choices=LOG_LEVELS),
    ),
    help="the Twitch chat simulator",
    env_prefix="SHARDRUNNER_SIM_TWITCH_",
)

#: The sections of ``shardrunner sim twitch``.
SIM_TWITCH_SECTIONS: Final = (SIM_TWITCH,)
