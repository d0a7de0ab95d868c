"""The channels and the chat they generate: PRIVMSG with realistic tags, USERNOTICE (sub, resub,
subgift, raid), CLEARCHAT, CLEARMSG and ROOMSTATE changes, spread over channels by a Zipf-like
split (a few busy channels and a long tail), with shared-chat copies.

Every PRIVMSG and USERNOTICE has its own ``id`` (a UUID drawn from the seeded generator); a
shared-chat copy has its own ``id`` and the original's ``source-id``.
"""

from __future__ import annotations

import bisect
import random
import time
from dataclasses import dataclass, field
from typing import Any

from shardrunner.sim.twitch.wire import line

#: Emotes the generator uses, with their ids.
EMOTES = {"Kappa": "25", "Keepo": "1902", "LUL": "425618", "PogChamp": "305954156", "Kreygasm": "41"}
_WORDS_TEXT = (
    "hello chat gg wp nice play what was that lol true no way clip it poggers hype let's go "
    "first time here love the stream this song again"
)
WORDS = tuple(_WORDS_TEXT.split(" "))
COLORS = ("#FF4500", "#1E90FF", "#9ACD32", "#DAA520", "#8A2BE2", "")
#: Bodies of replied-to messages: between them every escape of a tag value (``\:`` ``\s`` ``\\``
#: ``\r`` ``\n``).
REPLY_BODIES = ("what do you think; really?", "saved to C:\\clips\\best one", "first line\r\nsecond line")
#: Users in all the simulated channels together, split like the traffic: channel i has AUDIENCE
#: times its share of the rate, 1/(i+1)^zipf over the sum (of 200 channels only chan0 has more
#: than 1,000).
AUDIENCE = 10_000
#: Rooms with more users than this get no JOIN/PART of others (TWITCH.md, "Joining").
MEMBERSHIP_MAX_VIEWERS = 1000
#: With --membership: the chance that a generated line of a small room comes with a JOIN or PART.
MEMBERSHIP_SHARE = 0.2
#: Made-up chatters present in a room at most (then one leaves before another joins).
MAX_CHATTERS = 100


@dataclass(eq=False)
class Channel:
    """One channel: its name, room-id, weight in the traffic, and who is in it."""

    name: str
    room_id: str
    weight: float = 1.0
    suspended: bool = False
    #: The other channels of its shared-chat group.
    shared: list[Channel] = field(default_factory=list)
    #: Connections in the channel (``Connection`` objects of :mod:`.connection`).
    members: set[Any] = field(default_factory=set)
    #: Ids of generated PRIVMSG/USERNOTICE that went to at least one connection.
    ids: list[str] = field(default_factory=list)
    #: Shared-chat copies delivered here: (id, source-id).
    copies: list[tuple[str, str]] = field(default_factory=list)
    #: Generated while no connection was in the channel (nobody could get them).
    unheard: int = 0
    #: A line held back to be sent after the next one (the swap of two lines), and since when.
    held: bytes | None = None
    held_at: float = 0.0
    #: Made-up chatters in the room (membership traffic), and the JOIN/PART lines generated.
    chatters: list[str] = field(default_factory=list)
    membership_lines: int = 0
    #: Users in the room (its share of AUDIENCE), set with the weights.
    viewers: int = 0

    @property
    def irc_name(self) -> str:
        return "#" + self.name


class Traffic:
    """Draws the next event of the whole set of channels."""

    def __init__(self, channels: list[Channel], zipf: float, seed: int) -> None:
        self.rng = random.Random(seed)
        self.channels = channels
        self.zipf = zipf
        self._cum: list[float] = []
        self.reweigh()

    def reweigh(self) -> None:
        """Recompute the split after channels were added: channel i gets 1/(i+1)^s."""
        total = 0.0
        self._cum = []
        for i, ch in enumerate(self.channels):
            ch.weight = 1.0 / (i + 1) ** self.zipf
            total += ch.weight
            self._cum.append(total)
        for ch in self.channels:
            ch.viewers = int(AUDIENCE * ch.weight / total)

    def pick(self) -> Channel:
        x = self.rng.random() * self._cum[-1]
        return self.channels[min(bisect.bisect_right(self._cum, x), len(self.channels) - 1)]

    def uuid(self) -> str:
        h = f"{self.rng.getrandbits(128):032x}"
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def _chatter(self) -> tuple[str, str, dict[str, str]]:
        n = self.rng.randint(1, 50_000)
        login = f"viewer{n}"
        sub = self.rng.random() < 0.3
        months = self.rng.randint(1, 40) if sub else 0
        badges = [f"subscriber/{months}"] if sub else []
        mod = self.rng.random() < 0.03
        if mod:
            badges.insert(0, "moderator/1")
        if self.rng.random() < 0.1:
            badges.append("premium/1")
        tags = {
            "badge-info": f"subscriber/{months}" if sub else "",
            "badges": ",".join(badges),
            "color": COLORS[n % len(COLORS)],
            "display-name": f"Viewer{n}",
            "mod": "1" if mod else "0",
            "subscriber": "1" if sub else "0",
            "turbo": "0",
            "user-id": str(100_000_000 + n),
            "user-type": "mod" if mod else "",
        }
        return login, str(100_000_000 + n), tags

    def _text(self) -> tuple[str, str]:
        """A chat text and its ``emotes`` tag (positions in code points, inclusive)."""
        words = []
        for _ in range(self.rng.randint(1, 12)):
            if self.rng.random() < 0.2:
                words.append(self.rng.choice(tuple(EMOTES)))
            else:
                words.append(self.rng.choice(WORDS))
        if self.rng.random() < 0.05:
            words.append("ümlaut ✓")
        text = " ".join(words)
        action = self.rng.random() < 0.03
        offset = len("\x01ACTION ") if action else 0
        spots: dict[str, list[str]] = {}
        pos = 0
        for w in words:
            if w in EMOTES:
                spots.setdefault(EMOTES[w], []).append(f"{pos + offset}-{pos + offset + len(w) - 1}")
            pos += len(w) + 1
        emotes = "/".join(f"{k}:{','.join(v)}" for k, v in spots.items())
        return (f"\x01ACTION {text}\x01" if action else text), emotes

    def event(self, ch: Channel) -> tuple[str, dict[str, str], str, list[str]]:
        """The next event of ``ch``: (prefix, tags, command, params); the tags of PRIVMSG and
        USERNOTICE hold an ``id``."""
        now_ms = str(int(time.time() * 1000))
        r = self.rng.random()
        if r < 0.90:
            login, _, tags = self._chatter()
            text, emotes = self._text()
            tags.update(
                {
                    "emotes": emotes,
                    "first-msg": "1" if self.rng.random() < 0.02 else "0",
                    "flags": "",
                    "id": self.uuid(),
                    "returning-chatter": "0",
                    "room-id": ch.room_id,
                    "tmi-sent-ts": now_ms,
                    "client-nonce": f"{self.rng.getrandbits(64):016x}",
                }
            )
            if self.rng.random() < 0.05:
                tags["bits"] = str(self.rng.choice((1, 100, 500)))
                text = f"Cheer{tags['bits']} {text}"
            if self.rng.random() < 0.08:
                tags.update(
                    {
                        "reply-parent-msg-id": self.uuid(),
                        "reply-parent-user-id": "100000001",
                        "reply-parent-user-login": "viewer1",
                        "reply-parent-display-name": "Viewer1",
                        "reply-parent-msg-body": self.rng.choice(REPLY_BODIES),
                        "reply-thread-parent-msg-id": self.uuid(),
                        "reply-thread-parent-user-login": "viewer1",
                    }
                )
            return f"{login}!{login}@{login}.tmi.twitch.tv", tags, "PRIVMSG", [ch.irc_name, text]
        if r < 0.96:
            return self._usernotice(ch, now_ms)
        if r < 0.975:
            tags = {"room-id": ch.room_id, "tmi-sent-ts": now_ms}
            login, uid, _ = self._chatter()
            if self.rng.random() < 0.9:
                tags["target-user-id"] = uid
                if self.rng.random() < 0.7:
                    tags["ban-duration"] = str(self.rng.choice((10, 60, 600)))
                return "tmi.twitch.tv", tags, "CLEARCHAT", [ch.irc_name, login]
            return "tmi.twitch.tv", tags, "CLEARCHAT", [ch.irc_name]
        if r < 0.99:
            login, _, _ = self._chatter()
            tags = {"login": login, "room-id": "", "target-msg-id": self.uuid(), "tmi-sent-ts": now_ms}
            return "tmi.twitch.tv", tags, "CLEARMSG", [ch.irc_name, "bad words"]
        key, value = self.rng.choice(
            (
                ("slow", "0"),
                ("slow", "10"),
                ("emote-only", "1"),
                ("emote-only", "0"),
                ("followers-only", "-1"),
            )
        )
        return "tmi.twitch.tv", {key: value, "room-id": ch.room_id}, "ROOMSTATE", [ch.irc_name]

    def _usernotice(
        self, ch: Channel, now_ms: str, kind: str | None = None
    ) -> tuple[str, dict[str, str], str, list[str]]:
        login, _, tags = self._chatter()
        kind = kind or self.rng.choice(("sub", "resub", "subgift", "raid"))
        tags.update({"id": self.uuid(), "login": login, "msg-id": kind, "room-id": ch.room_id})
        tags["tmi-sent-ts"] = now_ms
        name = tags["display-name"]
        params = [ch.irc_name]
        if kind in ("sub", "resub"):
            months = "1" if kind == "sub" else str(self.rng.randint(2, 40))
            tags.update(
                {
                    "msg-param-cumulative-months": months,
                    "msg-param-should-share-streak": "0",
                    "msg-param-sub-plan": self.rng.choice(("Prime", "1000", "2000", "3000")),
                    "msg-param-sub-plan-name": "Channel Subscription",
                    "system-msg": f"{name} subscribed. They've subscribed for {months} months!",
                }
            )
            if kind == "resub":
                params.append("still here, love the stream")
        elif kind == "subgift":
            to, to_id, _ = self._chatter()
            tags.update(
                {
                    "msg-param-months": "1",
                    "msg-param-recipient-display-name": to,
                    "msg-param-recipient-id": to_id,
                    "msg-param-recipient-user-name": to,
                    "msg-param-sub-plan": "1000",
                    "msg-param-sub-plan-name": "Channel Subscription",
                    "system-msg": f"{name} gifted a Tier 1 sub to {to}!",
                }
            )
        else:
            viewers = str(self.rng.randint(2, 5000))
            tags.update(
                {
                    "msg-param-displayName": name,
                    "msg-param-login": login,
                    "msg-param-viewerCount": viewers,
                    "system-msg": f"{viewers} raiders from {name} have joined!",
                }
            )
        return "tmi.twitch.tv", tags, "USERNOTICE", params

    def raid(self, ch: Channel) -> tuple[bytes, str]:
        """A raid's USERNOTICE (``msg-id=raid``) in ``ch``, and its id."""
        prefix, tags, command, params = self._usernotice(ch, str(int(time.time() * 1000)), "raid")
        return line(command, params, tags=tags, prefix=prefix), tags["id"]

    def membership(self, ch: Channel) -> bytes | None:
        """Now and then, in a room of at most 1,000 users, a chatter's JOIN or PART (for the
        connections with the membership cap); None otherwise."""
        if ch.viewers > MEMBERSHIP_MAX_VIEWERS or self.rng.random() >= MEMBERSHIP_SHARE:
            return None
        rng = self.rng
        if ch.chatters and (len(ch.chatters) >= MAX_CHATTERS or rng.random() < 0.4):
            login = ch.chatters.pop(rng.randrange(len(ch.chatters)))
            command = "PART"
        else:
            login = f"viewer{rng.randint(1, 50_000)}"
            ch.chatters.append(login)
            command = "JOIN"
        ch.membership_lines += 1
        return line(command, [ch.irc_name], prefix=f"{login}!{login}@{login}.tmi.twitch.tv")

    def lines(self, ch: Channel) -> list[tuple[Channel, bytes, str | None, str | None]]:
        """The next event of ``ch`` formatted for every channel it goes to: (channel, line, id,
        source-id); shared-chat copies for the other channels of its group."""
        prefix, tags, command, params = self.event(ch)
        ident = tags.get("id")
        if not ch.shared or ident is None:
            return [(ch, line(command, params, tags=tags, prefix=prefix), ident, None)]
        tags["source-id"] = ident
        tags["source-room-id"] = ch.room_id
        tags["source-badges"] = tags.get("badges", "")
        tags["source-badge-info"] = tags.get("badge-info", "")
        out: list[tuple[Channel, bytes, str | None, str | None]] = [
            (ch, line(command, params, tags=tags, prefix=prefix), ident, ident)
        ]
        for other in ch.shared:
            copy = dict(tags, id=self.uuid(), **{"room-id": other.room_id})
            copied = line(command, [other.irc_name, *params[1:]], tags=copy, prefix=prefix)
            out.append((other, copied, copy["id"], ident))
        return out
