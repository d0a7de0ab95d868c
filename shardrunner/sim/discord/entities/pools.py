"""Small fixed pools indexed by hash bits: names, topics, sentences, games.

Cheap, and varied enough that payloads look like real traffic to anything that inspects them.
"""

from __future__ import annotations

from typing import Final

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
