"""Realistic Discord objects for the gateway simulator, as plain dicts ready for ``msgspec.json.encode``.

Everything here is shaped by what real clients parse, not only by the API documentation:
discord.py 2.7 (``discord/state.py`` and the model classes) and hikari 2.7
(``hikari/impl/entity_factory.py``, ``hikari/impl/event_factory.py``). hikari indexes many keys
directly, so every key it reads unconditionally is always present, even when its value is null.

Determinism. All randomness comes from the ``random.Random`` given to :class:`EntityFactory`, and the
clock is virtual (it starts at :data:`START_MS` and moves forward a few milliseconds per event), so a
seed reproduces a run byte for byte. A live server that wants wall-clock timestamps calls
:meth:`EntityFactory.advance_clock`.

Identity. What a user or a member looks like (username, avatar, roles, join date, presence) is derived
from its id with a cheap integer hash, not drawn from the generator. The same user therefore looks the
same in every payload (GUILD_CREATE, MESSAGE_CREATE, member chunks...) without the factory storing
anything per user, and :meth:`EntityFactory.guild_create` is a pure function of its model: the
GUILD_CREATE sent after a reconnect describes the same guild.

Sizes. A member is about 370 bytes of JSON and a presence about 150 (activities included). About a
quarter of members are online. A guild is "large" when it has more members than the client's
``large_threshold`` (Discord's rule). A guild that is not large lists every member, plus a presence
for each online one, so 250 members come to about 110 KB. A large guild lists only the bot and its
online members, as Discord does for clients with the presence intent: at most ``member_count // 3``
of them and never more than 3,000, each with its presence. Its GUILD_CREATE therefore grows by
about 130 bytes per member (3,000 members: about 390 KB; 9,000: about 1.2 MB) and stops growing at
about 1.6 MB once the cap applies (12,000 members and up). The rest of a large guild comes through
GUILD_MEMBERS_CHUNK (:meth:`EntityFactory.members_chunk`).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DEFAULT_MIX",
    "DM_CAPABLE",
    "EPOCH_MS",
    "START_MS",
    "SUPPORTED_EVENTS",
    "EntityFactory",
    "GuildModel",
    "snowflake",
]

JSON = dict[str, Any]

EPOCH_MS: int = 1420070400000  # Discord epoch: 2015-01-01T00:00:00Z
#: Where the virtual clock starts: 2025-01-01T00:00:00Z. Fixed so that a seed reproduces a run.
START_MS: Final = 1735689600000
#: Users in generated guilds signed up between these two instants (2016-01-01 and 2024-06-01).
_USER_CREATED_MIN_MS: Final = 1451606400000
_USER_CREATED_MAX_MS: Final = 1717200000000

_DAY_MS: Final = 86_400_000
_LOW_BITS: Final = 22
_LOW_MASK: Final = (1 << _LOW_BITS) - 1
_M64: Final = (1 << 64) - 1

#: Online members a large guild's GUILD_CREATE carries at most (with their presences).
_LARGE_GUILD_MEMBER_CAP: Final = 3000
#: Recent messages remembered per guild so edits, deletes and reactions target real messages.
_RECENT_MESSAGES: Final = 8
#: DM partners per factory; DMs are rare next to guild traffic, a handful is realistic.
_MAX_DM_PARTNERS: Final = 16

#: Application flags of a typical verified bot under 100 guilds: the three "limited" gateway intents.
_APPLICATION_FLAGS: Final = (1 << 13) | (1 << 15) | (1 << 19)


def snowflake(timestamp_ms: int, low: int = 0) -> int:
    """Snowflake for a UNIX ms timestamp; `low` fills the 22 low bits (0 <= low < 2**22)."""
    if not 0 <= low <= _LOW_MASK:
        raise ValueError(f"low must be in [0, 2**22), got {low}")
    if timestamp_ms < EPOCH_MS:
        raise ValueError(f"timestamp_ms {timestamp_ms} is before the Discord epoch")
    return ((timestamp_ms - EPOCH_MS) << _LOW_BITS) | low


def _created_ms(entity_id: int) -> int:
    """UNIX ms at which a snowflake was minted."""
    return (entity_id >> _LOW_BITS) + EPOCH_MS


def _mix(x: int) -> int:
    """A 64-bit integer hash (splitmix64 finalizer): spreads an id's bits over every output bit."""
    x = (x ^ (x >> 31)) * 0x7FB5D329728EA185 & _M64
    x = (x ^ (x >> 27)) * 0x81DADEF4BC2DD44D & _M64
    return x ^ (x >> 33)


def _iso(ms: int) -> str:
    """ISO 8601 the way Discord writes it: microseconds and an explicit +00:00 offset."""
    t = time.gmtime(ms // 1000)
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
        f".{ms % 1000:03d}000+00:00"
    )


def _hex32(seed: int) -> str:
    """A 32-hex-digit asset hash (avatars, icons) derived from an integer."""
    return f"{_mix(seed):016x}{_mix(seed ^ 0x5BD1E995):016x}"


def _derived_id(parent_id: int, salt: int) -> int:
    """A stable id for something that belongs to `parent_id` but is not stored in a model.

    Minted at a hashed instant within 200 days after the parent, with hashed low bits. Servers mint
    guild ids densely in time (one per millisecond); spreading derived ids over months keeps the
    chance that one lands on the same millisecond and low bits as a guild id negligible.
    """
    h = _mix(parent_id * 131 + salt)
    return snowflake(_created_ms(parent_id) + 1 + h % (200 * _DAY_MS), (h >> 40) & _LOW_MASK)


# -- Pools ---------------------------------------------------------------------------------------
# Small fixed pools indexed by hash bits: cheap, and varied enough that payloads look like real
# traffic to anything that inspects them.

_NAME_HEADS: Final = (
    "alex", "sam", "jamie", "quiet", "lucky", "night", "pixel", "moss", "ember", "river", "nova", "kai",
    "luna", "milo", "zoe", "leo", "ivy", "max", "ruby", "theo", "nico", "mika", "sora", "yuki",
    "dark", "happy", "lazy", "tiny", "cosmic", "frosty", "sunny", "salty", "crispy", "silent", "rusty",
    "neon", "swift", "sleepy", "mellow", "wild", "ghost", "cloud", "maple", "ocean", "storm", "echo",
    "blue", "red", "green", "gold", "shadow", "amber", "coral", "jade", "onyx", "iron", "velvet",
    "paper", "sugar", "lemon", "mango", "peach", "cherry", "olive",
)  # fmt: skip
_NAME_TAILS: Final = (
    "fox", "wolf", "cat", "owl", "bear", "otter", "panda", "raven", "tiger", "hawk", "koala", "moth",
    "gamer", "coder", "dev", "bot", "knight", "wizard", "ninja", "pirate", "ranger", "bard", "sage",
    "rider", "pilot", "smith", "baker", "drummer", "painter", "writer", "dreamer", "runner", "hunter",
    "byte", "pixel", "waves", "beats", "toast", "noodle", "muffin", "pickle", "taco", "bean", "fern",
    "leaf", "stone", "spark", "flame", "frost", "storm", "comet", "orbit", "moon", "star", "sky",
    "tide", "vale", "peak", "grove", "brook", "dusk", "dawn", "jay", "lynx",
)  # fmt: skip
_NICKS: Final = (
    "the mod", "not a bot", "just vibing", "AFK", "ask me about rust", "🌙 night owl", "team captain",
    "professional lurker", "resident artist", "bug hunter", "coffee addict", "DJ", "🎮", "sleep deprived",
)  # fmt: skip
_GUILD_ADJECTIVES: Final = (
    "Cozy", "Midnight", "Pixel", "Chill", "Retro", "Cosmic", "Hidden", "Golden", "Neon", "Quiet",
    "Wild", "Lucky", "Frozen", "Sunny", "Crimson", "Velvet",
)  # fmt: skip
_GUILD_NOUNS: Final = (
    "Café", "Lounge", "Hideout", "Guild", "Club", "Den", "Workshop", "Arcade", "Garden", "Harbor",
    "Library", "Tavern", "Studio", "Collective", "Campfire", "Station",
)  # fmt: skip
_TEXT_CHANNEL_NAMES: Final = (
    "off-topic", "memes", "announcements", "help", "dev-chat", "music", "gaming", "art", "introductions",
    "bot-commands", "media", "showcase", "random", "support", "events", "feedback",
)  # fmt: skip
_TOPICS: Final = (
    "Be nice. Read the rules.", "Share what you're working on!", "No spoilers please",
    "Questions welcome, answers appreciated", None, None,
)  # fmt: skip
_VOICE_CHANNEL_NAMES: Final = ("General", "Gaming", "Music", "Chill Lounge", "Study Room", "AFK")
#: (name, color, hoist, mentionable, permissions): roles a community server typically has.
_ROLE_SPECS: Final = (
    ("Admin", 0xE74C3C, True, False, "8"),
    ("Moderator", 0x3498DB, True, True, "1099511627775"),
    ("Member", 0x2ECC71, False, False, "1071698660929"),
    ("Regular", 0xF1C40F, True, False, "1071698660929"),
    ("Artist", 0x9B59B6, False, True, "1071698660929"),
    ("Gamer", 0x1ABC9C, False, True, "1071698660929"),
    ("Music Lover", 0xE91E63, False, True, "1071698660929"),
    ("Event Ping", 0x95A5A6, False, True, "0"),
)
_EVERYONE_PERMISSIONS: Final = "2222085186637376"
_EMOJI_NAMES: Final = (
    "pepe_hype", "kekw", "blobwave", "catjam", "thonk", "pog", "sadge", "partyparrot", "ferris", "nodders",
)  # fmt: skip
_UNICODE_REACTIONS: Final = ("👍", "😂", "❤️", "🔥", "🎉", "😭", "👀", "💀", "✅", "🙏", "😮", "💯")
_GAMES: Final = ("Minecraft", "League of Legends", "Valorant", "Stardew Valley", "Elden Ring", "Fortnite",
                 "Visual Studio Code", "Rocket League", "Terraria", "Overwatch 2")  # fmt: skip
_CUSTOM_STATUSES: Final = ("busy, ping me", "on vacation 🌴", "coding", "back soon", "studying 📚",
                           "touch grass", "gaming all night", "new profile pic!")  # fmt: skip
_SHORT_REPLIES: Final = (
    "lol", "same", "gg", "true", "ok", "thanks!", "wait what", "nice 🔥", "+1", "omg", "yes", "no way",
    "lmao", "fair", "brb", "ty", "real", "hahaha", "good morning", "gn everyone", "👀", "based",
)  # fmt: skip
_SENTENCES: Final = (
    "Has anyone tried the new update yet?",
    "I think the server was down for like ten minutes earlier.",
    "Just finished my first pull request, pretty happy with how it turned out.",
    "Does anyone know a good tutorial for async Python?",
    "The event starts at 8pm UTC, don't forget to sign up in the announcements channel.",
    "Honestly the second season was way better than the first.",
    "My cat just knocked my coffee onto the keyboard again.",
    "Can someone help me with a weird bug? It only happens on Windows.",
    "We should do a movie night this weekend.",
    "I'm getting a rate limit error every time I restart the bot.",
    "That build is broken, you need to pin the dependency to the previous version.",
    "Who's up for a few rounds later tonight?",
    "The new artwork in the showcase channel is incredible.",
    "Remember to drink water and take breaks, everyone.",
    "I've been stuck on this level for three days now.",
    "Does the bot support slash commands yet?",
    "Reading the docs before asking would save everyone a lot of time.",
    "Welcome to the server! Check out the roles channel to get started.",
    "It works on my machine, so it must be a caching issue.",
    "Shipping is delayed again, apparently it's stuck in customs.",
    "Why does every framework reinvent the same event loop?",
    "Finally got the gateway reconnect logic working with resume.",
    "Pizza or sushi for the meetup? Vote with reactions.",
    "The patch notes mention a fix for the memory leak.",
    "I switched to a mechanical keyboard and I'm never going back.",
    "Not sure if this belongs here, but has anyone seen this error before?",
    "Happy birthday!! Hope you have an amazing day 🎉",
    "That's the best speedrun I've ever watched.",
    "You can use the search bar to find older messages.",
    "I'll stream the tournament finals in the voice channel.",
)
_LINKS: Final = (
    "https://github.com/discord/discord-api-docs",
    "https://docs.python.org/3/library/asyncio.html",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://store.steampowered.com/app/413150/Stardew_Valley/",
)
_EMBED_TITLES: Final = ("Server Stats", "New Release", "Daily Reminder", "Poll Results", "Match Summary",
                        "Leaderboard", "Weather Report", "Changelog")  # fmt: skip
_EMBED_FIELD_NAMES: Final = ("Members", "Online", "Version", "Winner", "Score", "Status", "Region", "Uptime")
_GEO_REGIONS: Final = ("us-east", "us-central", "atlanta", "us-south", "newark")


@dataclass(slots=True)
class GuildModel:
    """The shape of one simulated guild: ids only, everything else is derived from them."""

    id: int
    name: str
    owner_id: int
    channel_ids: list[int]  # text channels, first one is the "general" channel
    voice_channel_ids: list[int]
    role_ids: list[int]  # role_ids[0] == id (the @everyone role has the guild's id)
    member_ids: list[int]  # user ids of every member, bot user included
    member_count: int  # == len(member_ids)


#: Default dispatch mix: event name -> relative weight. MESSAGE_CREATE dominates, as it does for a
#: bot with the message content intent; presences come next (every status change of every member).
DEFAULT_MIX: dict[str, float] = {
    "MESSAGE_CREATE": 0.42,
    "PRESENCE_UPDATE": 0.22,
    "TYPING_START": 0.14,
    "GUILD_MEMBER_UPDATE": 0.04,
    "MESSAGE_UPDATE": 0.05,
    "MESSAGE_DELETE": 0.03,
    "MESSAGE_REACTION_ADD": 0.07,
    "VOICE_STATE_UPDATE": 0.03,
}
#: Events that can happen outside a guild (DMs).
DM_CAPABLE: frozenset[str] = frozenset(
    {"MESSAGE_CREATE", "TYPING_START", "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "MESSAGE_UPDATE",
     "MESSAGE_DELETE"}
)  # fmt: skip
#: Every event name :meth:`EntityFactory.event` can build.
SUPPORTED_EVENTS: frozenset[str] = frozenset(DEFAULT_MIX) | DM_CAPABLE


@dataclass(slots=True)
class _GuildCtx:
    """What building many members of one guild needs, computed once per payload."""

    id: int
    id_str: str
    created_ms: int
    bot_role: str | None
    booster_role: str | None
    role_pool: list[str]


@dataclass(slots=True)
class _RecentMessage:
    id: int
    channel_id: int
    author_id: int
    content: str  # as first sent: edits derive from it so repeated edits do not grow the message


class EntityFactory:
    """Builds Discord objects. All randomness comes from `rng`, so a seed reproduces a run."""

    def __init__(
        self, rng: random.Random, bot_user_id: int, application_id: int, bot_name: str = "shardrunner-sim"
    ) -> None:
        self._rng = rng
        self._bot_id = bot_user_id
        self._bot_id_str = str(bot_user_id)
        self._application_id = application_id
        self._bot_name = bot_name
        self._now_ms = START_MS
        # The 22 low bits of minted snowflakes: Discord's worker/process/increment, here a counter.
        self._increment = 0
        self._guild_count = 0
        self._recent: dict[int, deque[_RecentMessage]] = {}
        self._dm_partners: list[tuple[int, int]] = []  # (user id, DM channel id)
        self._builders: dict[str, Callable[[GuildModel | None], JSON]] = {
            "MESSAGE_CREATE": self._message_create,
            "PRESENCE_UPDATE": self._presence_update,
            "TYPING_START": self._typing_start,
            "GUILD_MEMBER_UPDATE": self._guild_member_update,
            "MESSAGE_UPDATE": self._message_update,
            "MESSAGE_DELETE": self._message_delete,
            "MESSAGE_REACTION_ADD": self._reaction_add,
            "MESSAGE_REACTION_REMOVE": self._reaction_remove,
            "VOICE_STATE_UPDATE": self._voice_state_update,
        }

    # -- Clock and ids -----------------------------------------------------------------------------

    @property
    def now_ms(self) -> int:
        """The virtual clock, UNIX ms; timestamps and snowflakes of new messages use it."""
        return self._now_ms

    def advance_clock(self, now_ms: int) -> None:
        """Move the virtual clock forward to `now_ms` (never backward, so message ids stay ordered).

        Tests leave the clock alone to stay reproducible; a live server may feed it wall-clock time.
        """
        self._now_ms = max(self._now_ms, now_ms)

    def _tick(self) -> int:
        # Events of a busy shard arrive milliseconds apart.
        self._now_ms += self._rng.randint(1, 40)
        return self._now_ms

    def _mint(self, at_ms: int) -> int:
        self._increment = (self._increment + 1) & _LOW_MASK
        return snowflake(at_ms, self._increment)

    # -- Users and the application ---------------------------------------------------------------

    def bot_user(self) -> JSON:
        """The bot's own full user object, as in READY ``user`` and ``GET /users/@me``."""
        h = _mix(self._bot_id)
        return {
            "id": self._bot_id_str,
            "username": self._bot_name,
            # Bots keep 4-digit discriminators on real Discord; the simulator uses the new "0" form,
            # which both libraries handle (str(user) is then the bare name).
            "discriminator": "0",
            "global_name": None,
            "avatar": _hex32(self._bot_id) if h & 3 else None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "bot": True,
            "verified": True,
            "mfa_enabled": True,
            "flags": 0,
            "public_flags": 0,
            "premium_type": 0,
            "email": None,
            "locale": "en-US",
        }

    def application(self) -> JSON:
        """The partial application READY carries."""
        return {"id": str(self._application_id), "flags": _APPLICATION_FLAGS}

    def _owner_id(self) -> int:
        # The developer who owns the application: a user account older than the application.
        app_ms = max(_created_ms(self._application_id), _USER_CREATED_MIN_MS + _DAY_MS)
        h = _mix(self._application_id ^ 0xA5A5)
        return snowflake(_USER_CREATED_MIN_MS + h % (app_ms - _USER_CREATED_MIN_MS), h >> 42)

    def full_application(self) -> JSON:
        """``GET /applications/@me`` and ``/oauth2/applications/@me``.

        Carries every key discord.py's ``AppInfo`` and hikari's ``deserialize_application`` index
        directly (``verify_key`` must be hex, ``approximate_*_count`` must be present).
        """
        install_params = {"scopes": ["bot", "applications.commands"], "permissions": "277025508352"}
        bot = self.bot_user()
        public_bot = {k: bot[k] for k in ("id", "username", "discriminator", "global_name", "avatar", "bot")}
        public_bot["public_flags"] = 0
        return {
            "id": str(self._application_id),
            "name": self._bot_name,
            "icon": _hex32(self._application_id),
            "description": "A simulated bot for the shardrunner gateway simulator.",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": f"{_hex32(self._application_id ^ 1)}{_hex32(self._application_id ^ 2)}",
            "flags": _APPLICATION_FLAGS,
            "owner": self._user(self._owner_id()),
            "team": None,
            "bot": public_bot,
            "tags": ["utility", "simulation"],
            "install_params": install_params,
            "integration_types_config": {"0": {"oauth2_install_params": install_params}, "1": {}},
            "custom_install_url": None,
            "terms_of_service_url": None,
            "privacy_policy_url": None,
            "role_connections_verification_url": None,
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "rpc_origins": [],
            "approximate_guild_count": self._guild_count,
            "approximate_user_install_count": 0,
            "is_monetized": False,
            "storefront_available": False,
        }

    def _user(self, uid: int, h: int | None = None) -> JSON:
        """A user object as Discord embeds it in members and messages; derived from the id alone."""
        if uid == self._bot_id:
            return {
                "id": self._bot_id_str,
                "username": self._bot_name,
                "global_name": None,
                "discriminator": "0",
                "avatar": _hex32(uid) if _mix(uid) & 3 else None,
                "public_flags": 0,
                "bot": True,
            }
        if h is None:
            h = _mix(uid)
        head = _NAME_HEADS[h & 63]
        tail = _NAME_TAILS[(h >> 6) & 63]
        style = (h >> 12) & 3
        digits = (h >> 14) % 1000
        if style == 0:
            username = f"{head}{tail}"
        elif style == 1:
            username = f"{head}_{tail}{digits}"
        elif style == 2:
            username = f"{head}.{tail}"
        else:
            username = f"{head}{digits}"
        # A quarter of users never set a display name; about 40% keep the default avatar.
        global_name = f"{head.capitalize()} {tail.capitalize()}" if (h >> 24) & 3 else None
        avatar = _hex32(uid) if (h >> 26) % 5 > 1 else None
        return {
            "id": str(uid),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": avatar,
            "public_flags": 0,
        }

    # -- Guilds ------------------------------------------------------------------------------------

    def guild_model(self, guild_id: int, members: int) -> GuildModel:
        """A new guild with `members` members (bot included), a few text and voice channels and roles."""
        if members < 1:
            raise ValueError(f"a guild has at least one member (the bot), got {members}")
        rng = self._rng
        created = _created_ms(guild_id)
        low = guild_id & _LOW_MASK

        taken = {guild_id}

        def later_ids(count: int) -> list[int]:
            # Channels and roles come after the guild; sharing its low bits keeps them apart from
            # the ids the server mints for other guilds.
            ids: list[int] = []
            while len(ids) < count:
                new = snowflake(created + rng.randint(1, 200 * _DAY_MS), low)
                if new not in taken:
                    taken.add(new)
                    ids.append(new)
            return sorted(ids)

        channel_ids = later_ids(rng.randint(3, 6))
        voice_channel_ids = later_ids(rng.randint(1, 3))
        # @everyone, the bot's managed role, the booster role, then 2-5 community roles.
        role_ids = [guild_id, *later_ids(rng.randint(4, 7))]
        lo, hi = _USER_CREATED_MIN_MS, _USER_CREATED_MAX_MS
        randint, getrandbits = rng.randint, rng.getrandbits
        member_ids = [self._bot_id]
        seen = {self._bot_id}
        while len(member_ids) < members:
            uid = snowflake(randint(lo, hi), getrandbits(_LOW_BITS))
            if uid not in seen:
                seen.add(uid)
                member_ids.append(uid)
        name = f"{rng.choice(_GUILD_ADJECTIVES)} {rng.choice(_GUILD_NOUNS)}"
        self._guild_count += 1
        # Nobody can have posted before they joined; joins run at most a day past the guild's birth.
        self.advance_clock(created + 2 * _DAY_MS)
        return GuildModel(
            id=guild_id,
            name=name,
            owner_id=member_ids[1] if members > 1 else self._bot_id,
            channel_ids=channel_ids,
            voice_channel_ids=voice_channel_ids,
            role_ids=role_ids,
            member_ids=member_ids,
            member_count=members,
        )

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

    @staticmethod
    def _is_online(uid: int) -> bool:
        # About a quarter of members are online at any time, typical of community servers; hashing
        # the id keeps the set stable across payloads.
        return _mix(uid ^ 0x0E1) % 4 == 0

    def _presence(self, uid: int, guild_id_str: str | None) -> JSON:
        """A member's presence as GUILD_CREATE lists it (derived from the id alone)."""
        h = _mix(uid ^ 0x0E1)
        roll = (h >> 2) % 20
        status = "online" if roll < 12 else "idle" if roll < 17 else "dnd"
        platform = (h >> 7) & 7
        if platform < 4:
            client_status = {"desktop": status}
        elif platform < 6:
            client_status = {"mobile": status}
        elif platform == 6:
            client_status = {"web": status}
        else:
            client_status = {"desktop": status, "mobile": status}
        started = START_MS - (h >> 20) % (6 * 3_600_000)
        kind = (h >> 10) % 10
        activities: list[JSON] = []
        if kind < 2:
            activities.append(
                {
                    "type": 4,
                    "name": "Custom Status",
                    "state": _CUSTOM_STATUSES[(h >> 14) % len(_CUSTOM_STATUSES)],
                    "id": "custom",
                    "created_at": started,
                }
            )
        elif kind < 4:
            activities.append(
                {
                    "type": 0,
                    "name": _GAMES[(h >> 14) % len(_GAMES)],
                    "id": f"{h & 0xFFFFFFFFFFFFFFFF:016x}",
                    "created_at": started,
                    "timestamps": {"start": started},
                }
            )
        presence: JSON = {
            "user": {"id": str(uid)},
            "status": status,
            "client_status": client_status,
            "activities": activities,
        }
        if guild_id_str is not None:
            presence["guild_id"] = guild_id_str
        return presence

    @staticmethod
    def _category_ids(model: GuildModel) -> tuple[int, int]:
        # Categories are not in GuildModel (its fields are fixed), so their ids are derived.
        return _derived_id(model.id, 1), _derived_id(model.id, 2)

    def _channels(self, model: GuildModel) -> list[JSON]:
        h = _mix(model.id)
        text_cat, voice_cat = self._category_ids(model)
        everyone = str(model.id)
        channels: list[JSON] = [
            {
                "id": str(text_cat),
                "type": 4,
                "name": "Text Channels",
                "position": 0,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "flags": 0,
            },
            {
                "id": str(voice_cat),
                "type": 4,
                "name": "Voice Channels",
                "position": 1,
                "permission_overwrites": [],
                "parent_id": None,
                "nsfw": False,
                "flags": 0,
            },
        ]
        for i, cid in enumerate(model.channel_ids):
            name = "general" if i == 0 else _TEXT_CHANNEL_NAMES[(h + i) % len(_TEXT_CHANNEL_NAMES)]
            if i and name in {c["name"] for c in channels}:
                name = f"{name}-{i}"
            ch = _mix(cid)
            last_ms = START_MS - ch % (30 * _DAY_MS)
            created = _created_ms(cid)
            # Announcement-style channels are read-only for @everyone: one real overwrite.
            overwrites = (
                [{"id": everyone, "type": 0, "allow": "0", "deny": "2048"}] if name == "announcements" else []
            )
            channels.append(
                {
                    "id": str(cid),
                    "type": 0,
                    "name": name,
                    "position": i,
                    "permission_overwrites": overwrites,
                    "parent_id": str(text_cat),
                    "topic": _TOPICS[ch % len(_TOPICS)],
                    "nsfw": False,
                    "last_message_id": str(snowflake(last_ms, ch >> 42)) if last_ms > created else None,
                    "rate_limit_per_user": 0,
                    "flags": 0,
                }
            )
        for i, cid in enumerate(model.voice_channel_ids):
            channels.append(
                {
                    "id": str(cid),
                    "type": 2,
                    "name": _VOICE_CHANNEL_NAMES[(h + i) % len(_VOICE_CHANNEL_NAMES)]
                    if i
                    else _VOICE_CHANNEL_NAMES[0],
                    "position": i,
                    "permission_overwrites": [],
                    "parent_id": str(voice_cat),
                    "nsfw": False,
                    "last_message_id": None,
                    "rate_limit_per_user": 0,
                    "bitrate": 64000,
                    "user_limit": 0 if i % 2 == 0 else 10,
                    "rtc_region": None,
                    "flags": 0,
                }
            )
        return channels

    def _roles(self, model: GuildModel) -> list[JSON]:
        h = _mix(model.id)
        roles: list[JSON] = []
        n = len(model.role_ids)
        for i, rid in enumerate(model.role_ids):
            tags: JSON | None = None
            if i == 0:
                name, color, hoist, mentionable, perms = "@everyone", 0, False, False, _EVERYONE_PERMISSIONS
            elif i == 1:
                name, color, hoist, mentionable, perms = self._bot_name, 0, False, False, "277025508352"
                tags = {"bot_id": self._bot_id_str}
            elif i == 2:
                name, color, hoist, mentionable, perms = "Server Booster", 0xF47FFF, False, False, "0"
                # Discord marks these boolean tags with a null value; presence of the key is the flag.
                tags = {"premium_subscriber": None}
            else:
                name, color, hoist, mentionable, perms = _ROLE_SPECS[(h + i) % len(_ROLE_SPECS)]
            role: JSON = {
                "id": str(rid),
                "name": name,
                "description": None,
                "color": color,
                "colors": {"primary_color": color, "secondary_color": None, "tertiary_color": None},
                "hoist": hoist,
                "icon": None,
                "unicode_emoji": None,
                # @everyone sits at 0; the bot's role is usually high, community roles below it.
                "position": 0 if i == 0 else n - i,
                "permissions": perms,
                "managed": i == 1,
                "mentionable": mentionable,
                "flags": 0,
            }
            if tags is not None:
                role["tags"] = tags
            roles.append(role)
        return roles

    @staticmethod
    def _emojis(model: GuildModel) -> list[JSON]:
        h = _mix(model.id ^ 0xE0)
        return [
            {
                "id": str(_derived_id(model.id, 10 + i)),
                "name": _EMOJI_NAMES[(h + i) % len(_EMOJI_NAMES)],
                "roles": [],
                "require_colons": True,
                "managed": False,
                "animated": (h >> (8 + i)) & 3 == 0,
                "available": True,
            }
            for i in range(2 + h % 5)
        ]

    @staticmethod
    def _stickers(model: GuildModel) -> list[JSON]:
        if _mix(model.id ^ 0x57) & 1:
            return []
        return [
            {
                "id": str(_derived_id(model.id, 30)),
                "name": "wave",
                "tags": "👋",
                "type": 2,
                "format_type": 1,
                "description": "Say hi",
                "asset": "",
                "available": True,
                "guild_id": str(model.id),
            }
        ]

    def guild_create(self, model: GuildModel, *, large_threshold: int = 250) -> JSON:
        """The full GUILD_CREATE `d`: every guild field, roles, channels, members, presences, voice states.

        A guild is large when ``member_count > large_threshold``. A guild that is not large lists every
        member; a large one lists the bot plus its online members, at most ``member_count // 3`` and
        never more than 3,000 (Discord leaves offline members of large guilds to member chunking).
        Each listed online member comes with its presence. A 250-member guild is about 110 KB, a
        9,000-member one about 1.2 MB (see the module docstring).

        This is a pure function of `model` (it draws nothing from the generator), so resending
        GUILD_CREATE after a reconnect describes the same guild.
        """
        ctx = self._ctx(model)
        gid = ctx.id_str
        large = model.member_count > large_threshold
        bot, is_online = self._bot_id, self._is_online
        online = [uid for uid in model.member_ids if uid != bot and is_online(uid)]
        if large:
            online = online[: min(model.member_count // 3, _LARGE_GUILD_MEMBER_CAP)]
            included = [bot, *online]
        else:
            included = list(model.member_ids)
        member = self._member
        members = [member(ctx, uid) for uid in included]
        # Presences in GUILD_CREATE carry neither guild_id nor a full user, as on Discord.
        presence = self._presence
        presences = [presence(uid, None) for uid in online]
        voice_states = self._guild_voice_states(model, online)
        bot_joined = next((m["joined_at"] for m in members if m["user"]["id"] == self._bot_id_str), None)
        h = _mix(model.id)
        general = str(model.channel_ids[0]) if model.channel_ids else None
        # One member in 40 boosts (see _member); the tier follows Discord's 2/7/14 boost steps.
        boosts = model.member_count // 40
        tier = 3 if boosts >= 14 else 2 if boosts >= 7 else 1 if boosts >= 2 else 0
        return {
            "id": gid,
            "name": model.name,
            "icon": _hex32(model.id) if h & 3 else None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(model.owner_id),
            "application_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 2,
            "mfa_level": 0,
            "nsfw_level": 0,
            "nsfw": False,
            "features": [],
            "system_channel_id": general,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": tier,
            "premium_subscription_count": boosts,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "incidents_data": None,
            "latest_onboarding_question_id": None,
            "home_header": None,
            "hub_type": None,
            "lazy": True,
            "version": _created_ms(model.id),
            "joined_at": bot_joined or _iso(max(ctx.created_ms, START_MS)),
            "large": large,
            "unavailable": False,
            "member_count": model.member_count,
            "roles": self._roles(model),
            "emojis": self._emojis(model),
            "stickers": self._stickers(model),
            "channels": self._channels(model),
            "threads": [],
            "members": members,
            "presences": presences,
            "voice_states": voice_states,
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
            "activity_instances": [],
            "application_command_counts": {},
        }

    def _guild_voice_states(self, model: GuildModel, online: list[int]) -> list[JSON]:
        """A few online members sitting in voice; only members listed in the payload (hikari needs that)."""
        if not model.voice_channel_ids:
            return []
        states: list[JSON] = []
        for uid in online:
            h = _mix(uid ^ model.id ^ 0x7C)
            if h % 25:
                continue
            states.append(
                {
                    "user_id": str(uid),
                    "channel_id": str(model.voice_channel_ids[(h >> 8) % len(model.voice_channel_ids)]),
                    "session_id": _hex32(h),
                    "deaf": False,
                    "mute": False,
                    "self_deaf": (h >> 16) % 6 == 0,
                    "self_mute": (h >> 19) % 3 == 0,
                    "self_video": False,
                    "self_stream": False,
                    "suppress": False,
                    "request_to_speak_timestamp": None,
                }
            )
            if len(states) >= 25:
                break
        return states

    def ready(
        self,
        *,
        session_id: str,
        resume_gateway_url: str,
        shard_id: int,
        num_shards: int,
        guild_ids: list[int],
    ) -> JSON:
        """READY `d`: the bot user, unavailable guild stubs, the session and the partial application."""
        micros = self._rng.randint(40_000, 160_000)
        trace = (
            f'["gateway-prd-us-east1-b-{shard_id % 1000:04d}",{{"micros":{micros},"calls":['
            f'"id_created",{{"micros":{micros // 150},"calls":[]}},'
            f'"session_lookup_time",{{"micros":{micros // 40},"calls":[]}},'
            f'"session_lookup_finished",{{"micros":12,"calls":[]}},'
            f'"discord-sessions-prd-2-{shard_id % 97}",{{"micros":{micros - micros // 5},"calls":[]}}]}}]'
        )
        return {
            "v": 10,
            "user_settings": {},
            "user": self.bot_user(),
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session_id,
            "session_type": "normal",
            "resume_gateway_url": resume_gateway_url,
            "shard": [shard_id, num_shards],
            "application": self.application(),
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": list(_GEO_REGIONS),
            "auth": {},
            "_trace": [trace],
        }

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

    # -- Dispatches --------------------------------------------------------------------------------

    def event(self, name: str, model: GuildModel | None) -> JSON:
        """The `d` of one dispatch of type `name` in guild `model` (None: a DM, only for DM_CAPABLE names).

        Supported: every name in :data:`SUPPORTED_EVENTS`. MESSAGE_UPDATE, MESSAGE_DELETE and the
        reaction events target one of the last few messages created in that guild (or DM) when there
        is one, so a client's message cache sees edits and reactions to messages it knows.
        """
        builder = self._builders.get(name)
        if builder is None:
            raise ValueError(f"unsupported event {name!r}; supported: {sorted(SUPPORTED_EVENTS)}")
        if model is None and name not in DM_CAPABLE:
            raise ValueError(f"{name} only happens in a guild, give a GuildModel")
        return builder(model)

    def _pick_member(self, model: GuildModel) -> int:
        ids = model.member_ids
        if len(ids) == 1:
            return ids[0]
        rng = self._rng
        # Chat is dominated by a few regulars: most traffic comes from the first few dozen members.
        if rng.random() < 0.7:
            return ids[1 + rng.randrange(min(len(ids) - 1, 40))]
        return ids[1 + rng.randrange(len(ids) - 1)]

    def _dm_partner(self) -> tuple[int, int]:
        rng = self._rng
        if len(self._dm_partners) < _MAX_DM_PARTNERS and (not self._dm_partners or rng.random() < 0.2):
            uid = snowflake(
                rng.randint(_USER_CREATED_MIN_MS, _USER_CREATED_MAX_MS), rng.getrandbits(_LOW_BITS)
            )
            channel = snowflake(rng.randint(_USER_CREATED_MAX_MS, START_MS), rng.getrandbits(_LOW_BITS))
            self._dm_partners.append((uid, channel))
        return rng.choice(self._dm_partners)

    def _text_channel(self, model: GuildModel) -> int:
        ids = model.channel_ids
        if not ids:
            raise ValueError(f"guild {model.id} has no text channel")
        # Half the chatter happens in #general.
        return ids[0] if self._rng.random() < 0.5 else self._rng.choice(ids)

    def _content(self, mention_ids: list[int], role_ids: list[str]) -> str:
        rng = self._rng
        roll = rng.random()
        if roll < 0.35:
            text = rng.choice(_SHORT_REPLIES)
        elif roll < 0.75:
            text = rng.choice(_SENTENCES)
        elif roll < 0.95:
            text = " ".join(rng.sample(_SENTENCES, rng.randint(2, 3)))
        else:
            text = " ".join(rng.sample(_SENTENCES, rng.randint(5, 8)))
        if rng.random() < 0.05:
            text = f"{text} {rng.choice(_LINKS)}"
        prefix = "".join(f"<@{uid}> " for uid in mention_ids) + "".join(f"<@&{rid}> " for rid in role_ids)
        return prefix + text

    def _embed(self, at_ms: int) -> JSON:
        rng = self._rng
        fields = [
            {"name": name, "value": str(rng.randint(1, 9999)), "inline": True}
            for name in rng.sample(_EMBED_FIELD_NAMES, rng.randint(1, 4))
        ]
        return {
            "type": "rich",
            "title": rng.choice(_EMBED_TITLES),
            "description": rng.choice(_SENTENCES),
            "color": rng.choice((0x5865F2, 0x57F287, 0xFEE75C, 0xEB459E, 0xED4245)),
            "fields": fields,
            "footer": {"text": "shardrunner-sim"},
            "timestamp": _iso(at_ms),
        }

    def _message(
        self,
        model: GuildModel | None,
        *,
        message_id: int,
        channel_id: int,
        author_id: int,
        content: str | None,
        edited_ms: int | None,
    ) -> JSON:
        """A full message object; `content` None draws new content (with mentions) from the generator."""
        rng = self._rng
        ctx = self._ctx(model) if model is not None else None
        mentions: list[JSON] = []
        mention_roles: list[str] = []
        if content is None:
            mention_ids: list[int] = []
            if model is not None and len(model.member_ids) > 2 and rng.random() < 0.15:
                pool = model.member_ids[1:]
                mention_ids = rng.sample(pool, min(len(pool), rng.randint(1, 2)))
            if ctx is not None and ctx.role_pool and rng.random() < 0.03:
                mention_roles = [rng.choice(ctx.role_pool)]
            content = self._content(mention_ids, mention_roles)
            for uid in mention_ids:
                user = self._user(uid)
                if ctx is not None:
                    user["member"] = self._member(ctx, uid, with_user=False)
                mentions.append(user)
        message: JSON = {
            "type": 0,
            "channel_id": str(channel_id),
            "id": str(message_id),
            "content": content,
            "author": self._user(author_id),
            "timestamp": _iso(_created_ms(message_id)),
            "edited_timestamp": _iso(edited_ms) if edited_ms is not None else None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mentions,
            "mention_roles": mention_roles,
            "attachments": [],
            "embeds": [self._embed(_created_ms(message_id))] if rng.random() < 0.1 else [],
            "pinned": False,
            "flags": 0,
            "components": [],
            "channel_type": 0 if model is not None else 1,
        }
        if ctx is not None:
            message["guild_id"] = ctx.id_str
            message["member"] = self._member(ctx, author_id, with_user=False)
        if edited_ms is None and rng.random() < 0.5:
            # Clients send a nonce (a snowflake of their send time) to match their own echo.
            message["nonce"] = str(
                snowflake(_created_ms(message_id) - rng.randint(50, 400), rng.getrandbits(22))
            )
        return message

    def _remember(self, key: int, recent: _RecentMessage) -> None:
        queue = self._recent.get(key)
        if queue is None:
            queue = self._recent[key] = deque(maxlen=_RECENT_MESSAGES)
        queue.append(recent)

    def _recall(self, model: GuildModel | None) -> _RecentMessage:
        """A recent message of this guild (or of the DMs), else an older one that was never seen."""
        queue = self._recent.get(model.id if model is not None else 0)
        if queue:
            return self._rng.choice(queue)
        rng = self._rng
        at = self._now_ms - rng.randint(60_000, 3 * _DAY_MS)
        if model is None:
            author, channel = self._dm_partner()
        else:
            author, channel = self._pick_member(model), self._text_channel(model)
        return _RecentMessage(self._mint(at), channel, author, rng.choice(_SENTENCES))

    def _message_create(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        if model is None:
            author, channel = self._dm_partner()
        else:
            author, channel = self._pick_member(model), self._text_channel(model)
        message = self._message(
            model,
            message_id=self._mint(now),
            channel_id=channel,
            author_id=author,
            content=None,
            edited_ms=None,
        )
        self._remember(
            model.id if model is not None else 0,
            _RecentMessage(int(message["id"]), channel, author, message["content"]),
        )
        return message

    def _message_update(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        old = self._recall(model)
        # Edits add an afterthought; the message keeps its id, author and channel.
        content = f"{old.content} (edit: {self._rng.choice(_SHORT_REPLIES)})"
        message = self._message(
            model,
            message_id=old.id,
            channel_id=old.channel_id,
            author_id=old.author_id,
            content=content,
            edited_ms=now,
        )
        return message

    def _message_delete(self, model: GuildModel | None) -> JSON:
        self._tick()
        old = self._recall(model)
        queue = self._recent.get(model.id if model is not None else 0)
        if queue is not None and old in queue:
            queue.remove(old)
        payload: JSON = {"id": str(old.id), "channel_id": str(old.channel_id)}
        if model is not None:
            payload["guild_id"] = str(model.id)
        return payload

    def _reaction_emoji(self, model: GuildModel | None) -> JSON:
        rng = self._rng
        if model is not None and rng.random() < 0.25:
            emoji = rng.choice(self._emojis(model))
            return {"id": emoji["id"], "name": emoji["name"], "animated": emoji["animated"]}
        return {"id": None, "name": rng.choice(_UNICODE_REACTIONS)}

    def _reaction(self, model: GuildModel | None, *, add: bool) -> JSON:
        self._tick()
        old = self._recall(model)
        if model is None:
            # In a DM only the partner or the bot can react; the partner is the interesting case.
            user_id = old.author_id if old.author_id != self._bot_id else self._dm_partner()[0]
        else:
            user_id = self._pick_member(model)
        payload: JSON = {
            "user_id": str(user_id),
            "type": 0,
            "message_id": str(old.id),
            "channel_id": str(old.channel_id),
            "emoji": self._reaction_emoji(model),
            "burst": False,
        }
        if add:
            payload["message_author_id"] = str(old.author_id)
            payload["burst_colors"] = []
        if model is not None:
            payload["guild_id"] = str(model.id)
            if add:
                payload["member"] = self._member(self._ctx(model), user_id)
        return payload

    def _reaction_add(self, model: GuildModel | None) -> JSON:
        return self._reaction(model, add=True)

    def _reaction_remove(self, model: GuildModel | None) -> JSON:
        return self._reaction(model, add=False)

    def _typing_start(self, model: GuildModel | None) -> JSON:
        now = self._tick()
        if model is None:
            user_id, channel = self._dm_partner()
            return {"user_id": str(user_id), "channel_id": str(channel), "timestamp": now // 1000}
        user_id = self._pick_member(model)
        return {
            "user_id": str(user_id),
            "channel_id": str(self._text_channel(model)),
            "guild_id": str(model.id),
            # Seconds, not milliseconds: Discord's one odd timestamp.
            "timestamp": now // 1000,
            "member": self._member(self._ctx(model), user_id),
        }

    def _presence_update(self, model: GuildModel | None) -> JSON:
        assert model is not None  # event() refuses guild-only events without a model
        now = self._tick()
        rng = self._rng
        uid = self._pick_member(model)
        status = rng.choices(("online", "idle", "dnd", "offline"), (5, 3, 1, 2))[0]
        activities: list[JSON] = []
        client_status: JSON = {}
        if status != "offline":
            client_status[rng.choice(("desktop", "desktop", "mobile", "web"))] = status
            roll = rng.random()
            if roll < 0.3:
                game = rng.choice(_GAMES)
                activity_id = f"{rng.getrandbits(64):016x}"
                activities.append(
                    {
                        "type": 0,
                        "name": game,
                        "id": activity_id,
                        "created_at": now,
                        "timestamps": {"start": now},
                    }
                )
            elif roll < 0.5:
                state = rng.choice(_CUSTOM_STATUSES)
                activities.append(
                    {"type": 4, "name": "Custom Status", "state": state, "id": "custom", "created_at": now}
                )
        return {
            "user": {"id": str(uid)},
            "status": status,
            "activities": activities,
            "client_status": client_status,
            "guild_id": str(model.id),
        }

    def _guild_member_update(self, model: GuildModel | None) -> JSON:
        assert model is not None
        self._tick()
        rng = self._rng
        ctx = self._ctx(model)
        uid = self._pick_member(model)
        member = self._member(ctx, uid)
        # The change itself: a new nickname, or a role gained or lost.
        if rng.random() < 0.5 or not ctx.role_pool:
            member["nick"] = rng.choice((None, *_NICKS))
        else:
            role = rng.choice(ctx.role_pool)
            roles: list[str] = member["roles"]
            if role in roles:
                roles.remove(role)
            else:
                roles.append(role)
        member["guild_id"] = ctx.id_str
        return member

    def _voice_state_update(self, model: GuildModel | None) -> JSON:
        assert model is not None
        self._tick()
        rng = self._rng
        uid = self._pick_member(model)
        joined = bool(model.voice_channel_ids) and rng.random() < 0.7
        return {
            "guild_id": str(model.id),
            "channel_id": str(rng.choice(model.voice_channel_ids)) if joined else None,
            "user_id": str(uid),
            "member": self._member(self._ctx(model), uid),
            "session_id": f"{rng.getrandbits(128):032x}",
            "deaf": False,
            "mute": False,
            "self_deaf": joined and rng.random() < 0.1,
            "self_mute": joined and rng.random() < 0.3,
            "self_video": False,
            "self_stream": False,
            "suppress": False,
            "request_to_speak_timestamp": None,
        }
