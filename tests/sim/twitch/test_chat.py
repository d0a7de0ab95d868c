"""Joining, sending under the per-account limits, generated traffic and its ids."""

from __future__ import annotations

from shardrunner.protocol import irc
from shardrunner.sim.twitch.traffic import REPLY_BODIES
from tests.sim.twitch.helpers import RawIrc, admin, running


async def test_join_replies_exactly_and_part() -> None:
    async with running(channels=("chan",)) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        start = len(c.raw)
        await c.join("chan")
        room = sim.channels["chan"].room_id
        assert c.raw[start:] == [
            b":bar!bar@bar.tmi.twitch.tv JOIN #chan",
            b":bar.tmi.twitch.tv 353 bar = #chan :bar",
            b":bar.tmi.twitch.tv 366 bar #chan :End of /NAMES list",
            b"@badge-info=;badges=;color=;display-name=bar;emote-sets=0;mod=0;subscriber=0;user-type= "
            b":tmi.twitch.tv USERSTATE #chan",
            b"@emote-only=0;followers-only=-1;r9k=0;room-id=" + room.encode() + b";slow=0;subs-only=0 "
            b":tmi.twitch.tv ROOMSTATE #chan",
        ]
        await c.send("PART #chan")
        await c.wait(lambda m: m.command == "PART")
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [j["channel"] for j in stats["joins"]] == ["chan"]
        assert [p["channel"] for p in stats["parts"]] == ["chan"]
        assert stats["channels"]["chan"]["members"] == 0


async def test_unknown_channel_gets_nothing_and_suspended_gets_a_notice() -> None:
    async with running(channels=("chan",), suspended=frozenset({"gone"})) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        start = len(c.raw)
        await c.send("JOIN #nosuch,#gone", "PING :sync")
        await c.wait(lambda m: m.command == "PONG")
        assert c.raw[start:-1] == [
            b"@msg-id=msg_channel_suspended :tmi.twitch.tv NOTICE #gone "
            b":This channel does not exist or has been suspended."
        ]


async def test_join_over_the_limit_closes_the_connection_counted_per_account() -> None:
    async with running(channels=tuple(f"c{i}" for i in range(30)), join_limit=5) as sim:
        a, b = await RawIrc.tcp(sim), await RawIrc.ws(sim)
        await a.login()
        await b.login()
        await a.send("JOIN #c0,#c1,#c2")
        await a.wait(lambda m: m.command == "ROOMSTATE" and m.params == ["#c2"])
        await b.send("JOIN #c3,#c4")
        await b.wait(lambda m: m.command == "ROOMSTATE" and m.params == ["#c4"])
        await b.send("JOIN #c5")
        await b.wait_closed()
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [(v["kind"], v["channel"]) for v in stats["violations"]] == [("join_limit", "c5")]
        assert not a.closed.is_set()


async def test_own_privmsg_gets_userstate_with_its_id_and_reaches_the_others() -> None:
    async with running(channels=("chan",)) as sim:
        bot, reader = await RawIrc.tcp(sim), await RawIrc.tcp(sim)
        await bot.login()
        await reader.login("justinfan1", "x")
        await bot.join("chan")
        await reader.join("chan")
        start = len(bot.lines)
        await bot.send("@client-nonce=n1 PRIVMSG #chan :hello   there " + "x" * 600)
        us = await bot.wait(lambda m: m.command == "USERSTATE", start=start)
        got = await reader.wait(lambda m: m.command == "PRIVMSG")
        assert got.tags["id"] == us.tags["id"]
        assert got.tags["client-nonce"] == "n1"
        assert len(got.trailing) == 500
        assert got.prefix == "bar!bar@bar.tmi.twitch.tv"
        assert not any(m.command == "PRIVMSG" for m in bot.lines)
        _, stats = await admin(sim, "GET", "/_sim/stats")
        (sent,) = stats["messages"]
        assert (sent["accepted"], sent["id"], sent["account"]) == (True, us.tags["id"], "bar")


async def test_duplicate_per_channel_and_rate_limits() -> None:
    async with running(channels=("a", "b", "c"), message_limit=3) as sim:
        bot = await RawIrc.tcp(sim)
        await bot.login()
        sim.account("bar").limits = sim.account("bar").limits.__class__(privmsg_count=3, channel_interval=0.0)
        await bot.send("PRIVMSG #a :same", "PRIVMSG #a :same", "PRIVMSG #a :same \U000e0000")
        await bot.wait(lambda m: m.tags.get("msg-id") == "msg_duplicate")
        await bot.send("PRIVMSG #b :x")
        notice = await bot.wait(lambda m: m.tags.get("msg-id") == "msg_ratelimit")
        assert notice.params == [
            "#b",
            "Your message was not sent because you are sending messages too quickly.",
        ]
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [m["reason"] for m in stats["messages"]] == [None, "msg_duplicate", None, "msg_ratelimit"]
        assert [v["kind"] for v in stats["violations"]] == ["message_limit"]


async def test_one_message_per_second_per_channel_unless_moderator() -> None:
    async with running(channels=("a", "b"), moderator={"bar": frozenset({"b"})}) as sim:
        bot = await RawIrc.tcp(sim)
        await bot.login()
        await bot.send("PRIVMSG #a :one", "PRIVMSG #a :two", "PRIVMSG #b :one", "PRIVMSG #b :one")
        await bot.wait(lambda m: m.tags.get("msg-id") == "msg_ratelimit")
        await bot.send("PING :sync")
        await bot.wait(lambda m: m.command == "PONG")
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert [(m["channel"], m["reason"]) for m in stats["messages"]] == [
            ("a", None),
            ("a", "msg_ratelimit"),
            ("b", None),
            ("b", None),
        ]


async def test_concurrent_channel_limit_spares_moderated_channels() -> None:
    chans = ("a", "b", "c")
    async with running(channels=chans, channel_limit=1, moderator={"bar": frozenset({"c"})}) as sim:
        bot = await RawIrc.tcp(sim)
        await bot.login()
        await bot.join("a")
        await bot.send("JOIN #b")
        n = await bot.wait(lambda m: m.command == "NOTICE")
        assert n.tags["msg-id"] == "msg_concurrent_channel_limit_reached"
        await bot.join("c")
        assert sorted(sim.account("bar").channels) == ["a", "c"]


async def test_concurrent_channel_limit_when_anonymous_does_not_apply() -> None:
    async with running(channels=("a", "b", "c"), channel_limit=1) as sim:
        reader = await RawIrc.tcp(sim)
        await reader.login(nick="justinfan123", token="SCHMOOPIIE")
        for chan in ("a", "b", "c"):
            await reader.join(chan)
        assert sorted(sim.account("justinfan123").channels) == ["a", "b", "c"]
        assert sim.stats.violations == []


async def test_traffic_has_realistic_tags_and_every_id_is_listed() -> None:
    async with running(channels=tuple(f"chan{i}" for i in range(5)), rate=2000.0, shared_chat=1) as sim:
        c = await RawIrc.ws(sim)
        await c.login()
        for i in range(5):
            await c.join(f"chan{i}")
        await c.wait(lambda m: m.command == "USERNOTICE", timeout=10)
        await c.wait(lambda m: "source-id" in m.tags and m.tags["source-id"] != m.tags["id"], timeout=10)
        await admin(sim, "POST", "/_sim/config", {"rate": 0})
        await c.send("PING :end")
        await c.wait(lambda m: m.command == "PONG" and m.trailing == "end")
        _, stats = await admin(sim, "GET", "/_sim/stats")
        got = [m for m in c.lines if m.command in ("PRIVMSG", "USERNOTICE")]
        listed = {i for ch in stats["channels"].values() for i in ch["ids"]}
        copies = {e["id"]: e["source_id"] for ch in stats["channels"].values() for e in ch["copies"]}
        assert {m.tags["id"] for m in got} == listed | set(copies)
        assert len(got) == len(listed) + len(copies)
        assert set(copies.values()) <= listed
        p = next(m for m in got if m.command == "PRIVMSG" and m.tags.get("emotes"))
        for key in (
            "id",
            "room-id",
            "user-id",
            "display-name",
            "badges",
            "badge-info",
            "color",
            "tmi-sent-ts",
        ):
            assert key in p.tags
        _emote, spans = p.tags["emotes"].split("/")[0].split(":")
        start, end = map(int, spans.split(",")[0].split("-"))
        text = p.trailing.removeprefix("\x01ACTION ")
        offset = len(p.trailing) - len(text)
        assert text[start - offset : end - offset + 1] in ("Kappa", "Keepo", "LUL", "PogChamp", "Kreygasm")
        counts = sorted((len(ch["ids"]) for ch in stats["channels"].values()), reverse=True)
        assert counts[0] > counts[-1]  # a busy channel and a tail
        assert irc.parse(irc.format(p)) == p


async def test_membership_joins_and_parts_of_chatters_only_in_small_rooms_and_with_the_cap() -> None:
    names = tuple(f"chan{i}" for i in range(20))
    async with running(channels=names, rate=3000.0, membership=True) as sim:
        assert sim.channels["chan0"].viewers > 1000 >= sim.channels["chan19"].viewers
        member = await RawIrc.tcp(sim)
        await member.login()
        plain = await RawIrc.tcp(sim)
        await plain.send("CAP REQ :twitch.tv/tags twitch.tv/commands", "PASS oauth:x", "NICK other")
        await plain.wait(lambda m: m.command == "376")
        for c in (member, plain):
            await c.join("chan0")
            await c.join("chan19")

        def others(c: RawIrc, command: str) -> list[irc.Message]:
            return [m for m in c.lines if m.command == command and m.prefix and m.prefix.startswith("viewer")]

        await member.wait(lambda m: m.command == "PART" and bool(m.prefix and m.prefix.startswith("viewer")))
        await admin(sim, "POST", "/_sim/config", {"rate": 0})
        for c in (member, plain):
            await c.send("PING :end")
            await c.wait(lambda m: m.command == "PONG")
        assert {m.params[0] for m in others(member, "JOIN") + others(member, "PART")} == {"#chan19"}
        assert others(plain, "JOIN") == others(plain, "PART") == []
        present: set[str] = set()
        for m in member.lines:  # a chatter parts only after it joined
            if m.prefix and m.prefix.startswith("viewer") and m.command in ("JOIN", "PART"):
                login = m.prefix.split("!")[0]
                if m.command == "JOIN":
                    present.add(login)
                else:
                    assert login in present
                    present.remove(login)
        room = sim.channels["chan19"]
        assert sorted(present) == sorted(room.chatters)
        _, stats = await admin(sim, "GET", "/_sim/stats")
        assert stats["channels"]["chan19"]["membership_lines"] == len(others(member, "JOIN")) + len(
            others(member, "PART")
        )
        assert stats["channels"]["chan0"]["membership_lines"] == 0


async def test_traffic_tags_carry_every_escape() -> None:
    async with running(channels=("chan",), rate=3000.0) as sim:
        c = await RawIrc.tcp(sim)
        await c.login()
        await c.join("chan")
        bodies: set[str] = set()

        def every_body(m: irc.Message) -> bool:
            if "reply-parent-msg-body" in m.tags:
                bodies.add(m.tags["reply-parent-msg-body"])
            return len(bodies) == len(REPLY_BODIES)

        await c.wait(every_body, timeout=10)
        raw = b"\n".join(c.raw)
        for escaped in (rb"\:", rb"\s", rb"\\", rb"\r", rb"\n"):
            assert escaped in raw, escaped
        assert bodies == set(REPLY_BODIES)
