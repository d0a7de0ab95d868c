"""The facts of Twitch chat as constants (../shared/TWITCH.md): endpoints, capabilities, numerics,
the NOTICE msg-ids a runtime acts on, and the default limits. No I/O; imports nothing of the project.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

#: Twitch's chat endpoints (plain ``ws://...:80`` answers 301 since August 2025).
WSS_URL: Final = "wss://irc-ws.chat.twitch.tv:443"
IRC_HOST: Final = "irc.chat.twitch.tv"
IRC_TLS_PORT: Final = 6697
IRC_PLAIN_PORT: Final = 6667

#: The server's name in prefixes and PING.
SERVER: Final = "tmi.twitch.tv"

CAP_MEMBERSHIP: Final = "twitch.tv/membership"
CAP_TAGS: Final = "twitch.tv/tags"
CAP_COMMANDS: Final = "twitch.tv/commands"
#: Every capability the server ACKs (names are case sensitive).
CAPS: Final = (CAP_MEMBERSHIP, CAP_TAGS, CAP_COMMANDS)

#: Anonymous read-only logins: ``NICK justinfan<digits>``.
ANONYMOUS_PREFIX: Final = "justinfan"

#: The welcome numerics and their trailing texts, in order.
WELCOME: Final = (
    ("001", "Welcome, GLHF!"),
    ("002", "Your host is tmi.twitch.tv"),
    ("003", "This server is rather new"),
    ("004", "-"),
    ("375", "-"),
    ("372", "You are in a maze of twisty passages, all alike."),
    ("376", ">"),
)
RPL_NAMREPLY: Final = "353"
RPL_ENDOFNAMES: Final = "366"
ERR_UNKNOWNCOMMAND: Final = "421"

#: NOTICE texts without a msg-id (sent to ``*`` before login).
LOGIN_FAILED: Final = "Login authentication failed"
IMPROPER_AUTH: Final = "Improperly formatted auth"

#: NOTICE msg-ids that matter to a runtime, with the server's text.
NOTICE_TEXTS: Final = {
    "msg_ratelimit": "Your message was not sent because you are sending messages too quickly.",
    "msg_duplicate": "Your message was not sent because it is identical to the previous one you sent, "
    "less than 30 seconds ago.",
    "msg_slowmode": "This room is in slow mode and you are sending messages too quickly.",
    "msg_timedout": "You are timed out.",
    "msg_banned": "You are permanently banned from talking in this channel.",
    "msg_channel_suspended": "This channel does not exist or has been suspended.",
    "tos_ban": "This channel has been closed due to terms of service violations.",
    "msg_followersonly": "This room is in followers-only mode.",
    "msg_subsonly": "This room is in subscribers-only mode.",
    "msg_emoteonly": "This room is in emote-only mode.",
    "msg_r9k": "This room is in unique-chat mode and the message you attempted to send is not unique.",
    "msg_suspended": "You don't have permission to perform that action.",
    "unrecognized_cmd": "Unrecognized command.",
    "msg_concurrent_channel_limit_reached": "You have reached the maximum number of channels you can "
    "join at once.",
}

#: The IRC commands a reading or sending connection hands on as events (the bot subscribes by these
#: names, like Discord's dispatch names).
EVENTS: Final = frozenset(
    {
        "PRIVMSG", "USERNOTICE", "CLEARCHAT", "CLEARMSG", "ROOMSTATE", "USERSTATE", "NOTICE", "JOIN",
        "PART", "WHISPER", "HOSTTARGET", "GLOBALUSERSTATE", RPL_NAMREPLY, RPL_ENDOFNAMES,
    }
)  # fmt: skip

#: Characters of a chat message kept; longer text is cut.
MAX_MESSAGE_CHARS: Final = 500
#: The window of the duplicate rule, in seconds.
DUPLICATE_WINDOW_S: Final = 30.0
#: What clients append to get around the duplicate rule.
DUPLICATE_BYPASS: Final = " \U000e0000"
#: Default seconds between the server's PINGs (about 5 minutes).
PING_INTERVAL_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class TwitchLimits:
    """The per-account limits of TWITCH.md (defaults of settings, not constants): each a count per
    window, for a normal account and a verified bot (a status no longer granted)."""

    login_count: int = 20
    login_window: float = 10.0
    join_count: int = 20
    join_window: float = 10.0
    #: PRIVMSG where the account is neither broadcaster nor moderator.
    privmsg_count: int = 20
    privmsg_window: float = 30.0
    #: PRIVMSG where the account is broadcaster or moderator.
    privmsg_mod_count: int = 100
    privmsg_mod_window: float = 30.0
    #: Non-moderators: at most one message per this many seconds per channel.
    channel_interval: float = 1.0
    #: Channels joined at once (those the account moderates do not count; verified: no exemption).
    max_channels: int = 100

    @classmethod
    def verified(cls, *, join_window: float = 10.0, message_window: float = 30.0) -> TwitchLimits:
        """A verified bot's limits, in windows of ``join_window`` (JOINs and logins) and
        ``message_window`` (PRIVMSG) seconds."""
        return cls(login_count=200, join_count=2000, privmsg_count=7500).with_windows(
            join_window, message_window
        )

    def with_windows(self, join_window: float, message_window: float) -> TwitchLimits:
        """The same counts in other windows: ``join_window`` seconds for the JOINs and logins,
        ``message_window`` for the PRIVMSG (moderator or not); tests shorten them, as settings."""
        return replace(
            self,
            login_window=join_window,
            join_window=join_window,
            privmsg_window=message_window,
            privmsg_mod_window=message_window,
        )


NORMAL_LIMITS: Final = TwitchLimits()
VERIFIED_LIMITS: Final = TwitchLimits.verified()


def normalize_channel(name: str) -> str:
    """``#Chan`` or ``Chan`` -> ``chan`` (channel logins are lower case)."""
    return name.removeprefix("#").lower()


def is_anonymous(login: str) -> bool:
    """``justinfan<digits>`` logins read without a token and cannot send."""
    rest = login.removeprefix(ANONYMOUS_PREFIX)
    return rest != login and rest.isdigit()


def read_names(text: str) -> list[str]:
    """The names of a file of names, one a line: blank lines and comments (``#`` then a space, or
    ``#`` alone) skipped, so that ``#channel`` is a channel; an account line may be ``login:token``."""
    out = []
    for line in text.splitlines():
        item = line.strip()
        if not item or item == "#" or item.startswith("# ") or item.startswith("#\t"):
            continue
        out.append(item.split(" #", 1)[0].strip())
    return out
