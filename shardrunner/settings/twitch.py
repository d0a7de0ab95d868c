"""The ``twitch`` section of ``shardrunner start``: the Twitch chat bot, its accounts and channels.

Values are checked for their shape here (a login is a Twitch login, a token is not empty); the
platform's discovery (:mod:`shardrunner.gateway.twitch.plan`) reads them into accounts, channels
and limits. Tokens are secret: never printed, masked in every dump and error.
"""

from __future__ import annotations

from typing import Final

from shardrunner.protocol.twitch import NORMAL_LIMITS, WSS_URL
from shardrunner.settings.registry import (
    Section,
    Setting,
    to_auto_int,
    to_bool,
    to_float,
    to_int,
    to_names,
    to_optional_text,
    to_text,
)

_LOGIN_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_SCHEMES: Final = ("ws", "wss", "irc", "ircs")
_N: Final = NORMAL_LIMITS


def _login(text: str) -> str:
    login = text.strip().lower()
    if not login or len(login) > 25 or not set(login) <= _LOGIN_CHARS:
        raise ValueError("must name Twitch logins (letters, digits and _, at most 25)")
    return login


def to_accounts(value: object) -> str:
    """``login:token,...`` (a token with or without ``oauth:``); normalized to ``login:token,...``."""
    text = to_text(value)
    out = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        login, sep, token = item.partition(":")
        token = token.strip().removeprefix("oauth:")
        if not sep or not token:
            raise ValueError("must be login:token pairs separated by commas")
        out.append(f"{_login(login)}:{token}")
    return ",".join(out)


def to_channel_list(value: object) -> str:
    """Channel names, with or without ``#``, separated by commas (a TOML list too)."""
    text = to_text(value)
    return ",".join(_login(c.strip().lstrip("#")) for c in text.split(",") if c.strip())


def to_moderates(value: object) -> str:
    """``login:#chan,...``: where an account is moderator or broadcaster."""
    text = to_text(value)
    out = []
    for item in filter(None, (i.strip() for i in text.split(","))):
        login, sep, channel = item.partition(":")
        if not sep:
            raise ValueError("must be login:#channel pairs separated by commas")
        out.append(f"{_login(login)}:{_login(channel.strip().lstrip('#'))}")
    return ",".join(out)


def to_chat_url(value: object) -> str:
    """A chat server address: ``wss://`` or ``ws://`` (IRC over WebSocket), ``irc://`` or ``ircs://``."""
    text = to_text(value)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in _SCHEMES or not rest.strip("/"):
        raise ValueError("must be a wss://, ws://, ircs:// or irc:// address")
    return text


def to_optional_chat_url(value: object) -> str | None:
    return to_chat_url(value) if to_text(value) else None


TWITCH: Final = Section(
    "twitch",
    (
        Setting(
            "twitch_accounts",
            to_accounts,
            "",
            "the bot's Twitch accounts: login:token,... (OAuth tokens, with or without 'oauth:'; never "
            "printed); each reads up to --twitch-channel-limit channels and sends",
            secret=True,
            metavar="LOGIN:TOKEN,...",
            default_text="none",
        ),
        Setting(
            "twitch_accounts_file",
            to_optional_text,
            None,
            "a file of login:token lines, added to --twitch-accounts",
            metavar="FILE",
        ),
        Setting(
            "twitch_channels",
            to_channel_list,
            "",
            "the channels to read, separated by commas (also: --twitch-channels-file, and "
            "`shardrunner channels add|remove`, kept across restarts)",
            metavar="CHANNEL,...",
        ),
        Setting(
            "twitch_channels_file",
            to_optional_text,
            None,
            "a file of channel names to read, one a line ('#' comments allowed)",
            metavar="FILE",
        ),
        Setting(
            "twitch_anonymous",
            to_bool,
            True,
            "read through anonymous read-only logins (justinfan) the channels the accounts cannot hold",
        ),
        Setting(
            "twitch_channels_per_conn",
            to_int,
            50,
            "channels one reading connection joins at most",
            minimum=1,
            maximum=1000,
            metavar="N",
        ),
        Setting(
            "twitch_max_rate",
            to_float,
            200.0,
            "chat lines per second one reading connection is given at most (from the channels' "
            "traffic as measured): busy channels get fewer neighbours",
            minimum=1,
            metavar="PER_SECOND",
        ),
        Setting(
            "twitch_backup_readers",
            to_bool,
            False,
            "read every channel on a second connection too (another login, another worker where there "
            "is one); the bus delivers each message once",
        ),
        Setting(
            "twitch_backup_url",
            to_optional_chat_url,
            None,
            "the chat server address of the backup readers (default: --twitch-url)",
            metavar="URL",
        ),
        Setting(
            "twitch_spare_readers",
            to_auto_int,
            None,
            "reading connections started idle, for channels added while running",
            minimum=0,
            metavar="N|auto",
            default_text="auto: a quarter of the readers, at least 2",
        ),
        Setting(
            "twitch_verified",
            to_names,
            "",
            "logins of verified bots (their limits: 2,000 JOINs and 200 logins per 10 s, 7,500 "
            "messages per 30 s)",
            metavar="LOGIN,...",
        ),
        Setting(
            "twitch_moderates",
            to_moderates,
            "",
            "login:#channel,... where an account is moderator or broadcaster (100 messages per 30 s, "
            "no per-channel pace, not counted toward the channel limit)",
            metavar="LOGIN:#CHAN,...",
        ),
        Setting(
            "twitch_senders",
            to_names,
            "",
            "the accounts that send (each gets one sending connection); the first sends by default",
            metavar="LOGIN,...",
            default_text="every account",
        ),
        Setting(
            "twitch_send_queue",
            to_int,
            1000,
            "messages waiting to be sent per account at most (a full queue refuses at once)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "twitch_bypass_duplicates",
            to_bool,
            False,
            "send a message identical to the channel's last one within 30 s with an invisible "
            "character appended (else it is refused, as Twitch would drop it)",
        ),
        Setting(
            "twitch_url",
            to_chat_url,
            WSS_URL,
            "the chat server: wss:// or ws:// (IRC over WebSocket), ircs:// or irc:// (IRC over TCP)",
            metavar="URL",
        ),
        Setting(
            "twitch_join_limit",
            to_int,
            _N.join_count,
            "JOINs per --twitch-join-window per account (verified: 2,000)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "twitch_login_limit",
            to_int,
            _N.login_count,
            "logins per --twitch-join-window per account (verified: 200)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "twitch_message_limit",
            to_int,
            _N.privmsg_count,
            "messages per --twitch-message-window per account where it is not moderator (verified: 7,500)",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "twitch_mod_message_limit",
            to_int,
            _N.privmsg_mod_count,
            "messages per --twitch-message-window per account where it is moderator or broadcaster",
            minimum=1,
            metavar="N",
        ),
        Setting(
            "twitch_join_window",
            to_float,
            _N.join_window,
            "seconds of the JOIN and login limits' window (Twitch's: 10; tests shorten it, with the "
            "same counts)",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        Setting(
            "twitch_message_window",
            to_float,
            _N.privmsg_window,
            "seconds of the message limits' window, moderator or not, verified or not (Twitch's: 30)",
            minimum=0,
            exclusive_minimum=True,
            metavar="SECONDS",
        ),
        Setting(
            "twitch_channel_interval",
            to_float,
            _N.channel_interval,
            "seconds between two messages of a non-moderator in one channel",
            minimum=0,
            metavar="SECONDS",
        ),
        Setting(
            "twitch_channel_limit",
            to_int,
            _N.max_channels,
            "channels one account may be in at once (those it moderates aside)",
            minimum=1,
            metavar="N",
        ),
    ),
    help="the Twitch chat bot: accounts, channels, connections and limits",
)
