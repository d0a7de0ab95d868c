"""The sending connection against the Twitch simulator: sends over the limit paced and every one
confirmed by id, moderated channels on their own budget, the duplicate rule (refused, or the
workaround), Twitch's refusals answered to the caller, local refusals, and a RECONNECT in the middle
of a stream of sends losing and doubling nothing."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from shardrunner.gateway.connection import CommandRejected, ConnFatalError, NotReady
from shardrunner.gateway.twitch.sender import TwitchSender
from shardrunner.protocol import irc
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.twitch import DUPLICATE_BYPASS, TwitchLimits
from shardrunner.sim.twitch.server import TwitchSimulator
from tests.gateway.twitch.helpers import CountingBudgets, accepted, limit_account, until
from tests.sim.twitch.helpers import admin, running

CONN = ConnKey("twitch", 0, 1, 2)
CHANNELS = tuple(f"chan{i}" for i in range(6))
#: Short windows: 5 messages per second, one per 0.2 s per channel, 20 per second where moderator.
FAST = {"privmsg_count": 5, "privmsg_window": 1.0, "privmsg_mod_count": 20, "privmsg_mod_window": 1.0,
        "channel_interval": 0.2}  # fmt: skip


class Rig:
    def __init__(self, sim: TwitchSimulator | None, limits: TwitchLimits, **options: Any) -> None:
        self.events: list[Event] = []
        self.budgets = CountingBudgets()
        url = sim.ws_url if sim is not None else "ws://127.0.0.1:9"
        self.sender = TwitchSender(
            CONN, login="bot", token="abc", url=url, sink=self.events.append, budgets=self.budgets,
            limits=limits, **options,
        )  # fmt: skip
        self.task = asyncio.ensure_future(self.sender.run()) if sim is not None else None

    async def send(self, channel: str, text: str, **extra: Any) -> dict[str, Any]:
        return await self.sender.send_command({"channel": channel, "text": text, **extra}, timeout=20)

    async def stop(self) -> None:
        await self.sender.close()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        self.budgets.close()


def times_within(times: list[float], window: float) -> int:
    """The most of ``times`` in any span shorter than ``window``."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u - t < window) for i, t in enumerate(times)), default=0)


@pytest.mark.parametrize("channels", [1, 5], ids=["one channel", "many channels"])
async def test_sender_when_sending_three_times_the_limit_paces_and_confirms_each(channels: int) -> None:
    async with running(channels=CHANNELS) as sim:
        rig = Rig(sim, limit_account(sim, "bot", **FAST))
        texts = [f"hello {i}" for i in range(15)]
        results = await asyncio.gather(*(rig.send(CHANNELS[i % channels], t) for i, t in enumerate(texts)))
        await rig.stop()
        got = accepted(sim, "bot")
        assert [r["id"] for r in results] == [m["id"] for m in got], "each confirmed with its id, in order"
        assert len({r["id"] for r in results}) == 15
        assert all(r["channel"] in CHANNELS and isinstance(r["sent_at"], int) for r in results)
        assert sim.stats.violations == []
        assert all(m["accepted"] for m in sim.stats.messages), "none refused by the server"
        assert times_within([m["time"] for m in got], 1.0) <= 5, "paced to the account's window"
        for ch in CHANNELS[:channels]:
            sent = sorted(m["time"] for m in got if m["channel"] == ch)
            assert all(b - a >= 0.2 for a, b in itertools.pairwise(sent)), "the per-channel interval"
        # The bot sees Twitch's answer (the USERSTATE with the id) as an event of the channel.
        userstates = [e for e in rig.events if e.name == "USERSTATE"]
        assert {irc.parse(e.data).tags["id"] for e in userstates} == {r["id"] for r in results}
        assert {e.key for e in userstates} <= set(CHANNELS)
        described = rig.sender.describe()
        assert described["sent"] == 15
        assert described["queued"] == 0
        assert described["unanswered"] == 0
        assert rig.sender.counters.keys == set(CHANNELS[:channels])


async def test_sender_when_the_account_moderates_uses_the_moderator_budget_and_no_channel_interval() -> None:
    async with running(channels=CHANNELS, moderator={"bot": frozenset({"chan1"})}) as sim:
        limits = limit_account(sim, "bot", **{**FAST, "channel_interval": 1.0})
        rig = Rig(sim, limits, moderates=frozenset({"#chan1"}))
        started = time.monotonic()
        results = await asyncio.gather(*(rig.send("chan1", f"mod {i}") for i in range(20)))
        took = time.monotonic() - started
        assert len({r["id"] for r in results}) == 20
        assert took < 5.0, "20 messages in one channel at 1 per second would take 19 s"
        assert sim.stats.violations == []
        assert all(m["accepted"] for m in sim.stats.messages)
        assert rig.sender.describe()["moderated"] == ["chan1"]
        await rig.stop()


async def test_sender_when_twitch_says_it_moderates_learns_it_from_the_userstate() -> None:
    async with running(channels=CHANNELS, moderator={"bot": frozenset({"chan2"})}) as sim:
        rig = Rig(sim, limit_account(sim, "bot", **FAST))
        assert not rig.sender.moderated("chan2")
        await rig.send("chan2", "first")
        assert rig.sender.moderated("chan2")
        assert rig.sender.describe()["moderated"] == ["chan2"]
        assert rig.sender.moderated("bot"), "the broadcaster of its own channel"
        await rig.stop()


async def test_sender_when_the_same_text_comes_twice_refuses_it_or_with_the_bypass_sends_both() -> None:
    async with running(channels=CHANNELS) as sim:
        limits = limit_account(sim, "bot", **FAST)
        rig = Rig(sim, limits)
        await rig.send("chan0", "same  text")
        with pytest.raises(CommandRejected, match=r"^duplicate: "):
            await rig.send("#chan0", " same text ")
        other = await rig.send("chan1", "same text")
        assert other["channel"] == "chan1", "another channel: not a duplicate"
        assert rig.sender.describe()["refused"] == {"duplicate": 1}
        await rig.stop()

        bypass = Rig(sim, limits, bypass_duplicates=True)
        results = await asyncio.gather(*(bypass.send("chan3", "again") for _ in range(3)))
        await bypass.stop()
        assert len({r["id"] for r in results}) == 3
        texts = [m["text"] for m in accepted(sim, "bot") if m["channel"] == "chan3"]
        assert texts == ["again", "again" + DUPLICATE_BYPASS, "again"], "with and without, alternating"
        assert all(m["accepted"] for m in sim.stats.messages)


async def test_sender_when_twitch_refuses_with_a_notice_the_caller_gets_the_msg_id() -> None:
    async with running(channels=CHANNELS, suspended=frozenset({"chan4"})) as sim:
        limits = limit_account(sim, "bot", **FAST)
        rig = Rig(sim, limits)
        with pytest.raises(CommandRejected, match=r"^msg_channel_suspended: This channel does not exist"):
            await rig.send("chan4", "hi")
        # The server's limit lower than ours: its refusals and confirmations meet the right sends.
        limit_account(sim, "bot", **{**FAST, "privmsg_count": 2})
        outcomes = await asyncio.gather(
            *(rig.send(CHANNELS[i], f"m{i}") for i in range(4)), return_exceptions=True
        )
        confirmed = [o for o in outcomes if isinstance(o, dict)]
        refused = [o for o in outcomes if isinstance(o, CommandRejected)]
        assert len(confirmed) == 2
        assert len(refused) == 2
        assert all(str(o).startswith("msg_ratelimit: ") for o in refused)
        assert [o["id"] for o in confirmed] == [m["id"] for m in accepted(sim, "bot")]
        assert rig.sender.describe()["refused"] == {"msg_channel_suspended": 1, "msg_ratelimit": 2}
        await rig.stop()


async def test_sender_when_a_send_is_invalid_or_the_queue_is_full_refuses_at_once() -> None:
    rig = Rig(None, TwitchLimits(), queue_size=2)  # never run: everything stays queued
    waiting = [asyncio.ensure_future(rig.sender.send_command({"channel": "a", "text": f"t{i}"}, timeout=0.3))
               for i in range(2)]  # fmt: skip
    await until(lambda: rig.sender.describe()["queued"] == 2, 5, "two queued")
    with pytest.raises(CommandRejected, match=r"^queue_full: "):
        await rig.send("b", "third")
    with pytest.raises(CommandRejected, match=r"^too_long: 501 characters"):
        await rig.send("b", "x" * 501)
    with pytest.raises(CommandRejected, match=r"^bad_channel: "):
        await rig.send("not a channel", "hi")
    with pytest.raises(CommandRejected, match=r"^bad_text: "):
        await rig.send("b", "two\r\nlines")
    for task in waiting:
        with pytest.raises(NotReady, match="never written"):
            await task
    assert rig.sender.describe()["queued"] == 0
    with pytest.raises(ValueError, match="anonymous"):
        TwitchSender(CONN, login="justinfan123", token="x", url="ws://x", sink=print,
                     budgets=rig.budgets, limits=TwitchLimits())  # fmt: skip
    await rig.stop()


async def test_sender_when_twitch_asks_to_reconnect_mid_stream_loses_and_doubles_nothing() -> None:
    async with running(channels=CHANNELS, reconnect_grace=1.0) as sim:
        rig = Rig(sim, limit_account(sim, "bot", **{**FAST, "privmsg_count": 10, "channel_interval": 0.1}))
        sends = [asyncio.ensure_future(rig.send(CHANNELS[i % 5], f"stream {i}")) for i in range(40)]
        await until(lambda: rig.sender.sent >= 10, 10, "ten confirmed")
        status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "reconnect", "account": "bot"})
        assert status == 200
        assert body["applied"] == 1
        results = await asyncio.gather(*sends)
        await rig.stop()
        got = accepted(sim, "bot")
        assert sorted(r["id"] for r in results) == sorted(m["id"] for m in got), "nothing lost"
        texts = [m["text"] for m in sim.stats.messages if m["account"] == "bot"]
        assert sorted(texts) == sorted(f"stream {i}" for i in range(40)), "nothing doubled"
        assert sim.stats.violations == []
        logins = [x for x in sim.stats.logins if x["account"] == "bot"]
        assert len(logins) == 2
        assert rig.budgets.asked["twitch.login"] == 2, "one login per connect"
        first = logins[0]["connection"]
        assert next(c for c in sim.stats.closes if c["connection"] == first)["by"] == "client"
        assert {m["connection"] for m in got} == {first, logins[1]["connection"]}


async def test_sender_when_the_login_is_refused_stops_with_one_sentence_and_answers_the_queue() -> None:
    async with running(channels=CHANNELS, accounts={"bot": "right"}) as sim:
        rig = Rig(sim, TwitchLimits())
        send = asyncio.ensure_future(rig.send("chan0", "hi"))
        with pytest.raises(ConnFatalError, match="refused the login of bot"):
            await asyncio.wait_for(asyncio.shield(rig.task), 10)  # type: ignore[arg-type]
        with pytest.raises(NotReady, match="refused the login"):
            await send
        with pytest.raises(NotReady, match="fatal"):
            await rig.send("chan0", "again")


async def test_sender_when_a_channel_waits_on_its_interval_the_next_channel_goes_first() -> None:
    async with running(channels=CHANNELS) as sim:
        rig = Rig(sim, limit_account(sim, "bot", **{**FAST, "channel_interval": 0.5}))
        first = [asyncio.ensure_future(rig.send("chan0", f"a{i}")) for i in range(3)]
        asked = ("queued", "unanswered", "sent")
        await until(lambda: sum(rig.sender.describe()[k] for k in asked) == 3, 5, "chan0's three asked")
        other = await rig.send("chan1", "b0")  # queued behind chan0's three
        results = await asyncio.gather(*first)
        await rig.stop()
        assert results[0]["sent_at"] <= other["sent_at"] < results[1]["sent_at"], "no head-of-line wait"
        assert [m["text"] for m in accepted(sim, "bot")] == ["a0", "b0", "a1", "a2"]


async def test_sender_when_the_socket_dies_before_the_answer_says_so_and_never_sends_it_again() -> None:
    async with running(channels=CHANNELS) as sim:
        rig = Rig(sim, limit_account(sim, "bot", **FAST))
        await rig.send("chan0", "before")
        fault = {"kind": "stall", "account": "bot", "seconds": 30}
        status, _ = await admin(sim, "POST", "/_sim/fault", fault)
        assert status == 200
        lost = asyncio.ensure_future(rig.send("chan0", "unanswered"))
        await until(lambda: rig.sender.describe()["unanswered"] == 1, 5, "written, its answer held back")
        await until(lambda: len(sim.stats.messages) == 2, 5, "the server has it")
        status, _ = await admin(sim, "POST", "/_sim/fault", {"kind": "drop", "account": "bot"})
        assert status == 200
        with pytest.raises(NotReady, match="may or may not have been delivered"):
            await lost
        after = await rig.send("chan1", "after")  # sent on the next socket
        await rig.stop()
        assert after["id"] == accepted(sim, "bot")[-1]["id"]
        texts = [m["text"] for m in sim.stats.messages]
        assert texts == ["before", "unanswered", "after"], "the unanswered one is not written again"
