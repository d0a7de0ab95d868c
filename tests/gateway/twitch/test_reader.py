"""A reading connection against the Twitch simulator: logged in, its channels joined under the
JOIN budget, every message handed on once by id, through a RECONNECT (make before break) and a
drop; a refused login is fatal in one sentence."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from shardrunner.gateway.connection import ConnFatalError, ConnState
from shardrunner.gateway.twitch import link as link_module
from shardrunner.gateway.twitch import reader as reader_module
from shardrunner.gateway.twitch.reader import TwitchReader
from shardrunner.protocol import irc, lifecycle
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from shardrunner.sim.twitch.server import TwitchSimulator
from tests.gateway.twitch.helpers import CountingBudgets, limit_account, until
from tests.sim.twitch.helpers import admin, running

CONN = ConnKey("twitch", 0, 0, 1)
CHANNELS = ["chan0", "chan1", "chan2"]


class Rig:
    def __init__(self, sim: TwitchSimulator, url: str, login: str = "bot", token: str | None = "abc") -> None:
        self.events: list[Event] = []
        self.budgets = CountingBudgets()
        self.reader = TwitchReader(
            CONN, login=login, token=token, channels=CHANNELS, url=url, sink=self.events.append,
            budgets=self.budgets,
        )  # fmt: skip
        self.task = asyncio.ensure_future(self.reader.run())

    def ids(self) -> list[str]:
        """The ids of the messages handed on (PRIVMSG, USERNOTICE...: every line with an id tag)."""
        tags = (irc.parse(e.data).tags for e in list(self.events))
        return [t["id"] for t in tags if "id" in t]

    async def stop(self) -> None:
        await self.reader.close()
        await asyncio.wait_for(self.task, 10)


def generated(sim: TwitchSimulator) -> list[str]:
    return [i for name in CHANNELS for i in sim.channels[name].ids]


async def quiesce(sim: TwitchSimulator, rig: Rig) -> None:
    """Stop the traffic; wait until the reader has every message generated in its channels."""
    status, _ = await admin(sim, "POST", "/_sim/config", {"rate": 0})
    assert status == 200
    await until(lambda: set(generated(sim)) <= set(rig.ids()), 10, "every message handed on")


@pytest.mark.parametrize("over", ["ws", "tcp"])
async def test_reader_when_running_joins_its_channels_and_hands_on_every_message_once(over: str) -> None:
    async with running(channels=tuple(f"chan{i}" for i in range(5)), rate=300.0) as sim:
        url = sim.ws_url if over == "ws" else f"irc://127.0.0.1:{sim.irc_port}"
        rig = Rig(sim, url)
        await until(lambda: rig.reader.counters.key_count == 3, 10, "three channels joined")
        assert rig.reader.state is ConnState.READY
        await until(lambda: len(rig.ids()) >= 200, 10, "messages")
        await quiesce(sim, rig)
        await rig.stop()
        got = rig.ids()
        assert len(got) == len(set(got)), "each once"
        assert set(got) == set(generated(sim))
        assert {e.key for e in rig.events if e.name == "PRIVMSG"} <= set(CHANNELS)
        assert all(e.conn == CONN for e in rig.events)


async def test_reader_stamps_every_event_with_its_lease_epoch() -> None:
    async with running(channels=tuple(CHANNELS), rate=300.0) as sim:
        rig = Rig(sim, sim.ws_url)
        rig.reader.epoch = 4  # as the worker sets it from Assign/Adopt, before it runs
        await until(lambda: len(rig.ids()) >= 20, 10, "messages")
        await rig.stop()
        assert {e.epoch for e in rig.events} == {4}


async def test_reader_when_twitch_asks_to_reconnect_makes_the_replacement_before_the_break() -> None:
    async with running(channels=tuple(CHANNELS), rate=300.0, reconnect_grace=1.0) as sim:
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.counters.key_count == 3, 10, "joined")
        await until(lambda: len(rig.ids()) >= 100, 10, "messages")
        status, _ = await admin(sim, "POST", "/_sim/fault", {"kind": "reconnect", "account": "bot"})
        assert status == 200
        await until(lambda: rig.reader.counters.reconnects >= 1, 10, "replaced")
        seen = len(rig.ids())
        await until(lambda: len(rig.ids()) >= seen + 100, 10, "messages after the replacement")
        await quiesce(sim, rig)  # everything generated while either socket was in a channel
        await rig.stop()
        got = rig.ids()
        assert len(got) == len(set(got)), "messages seen on both sockets were handed on once"
        # Make before break: the second socket joined every channel before the first one closed.
        first, second = (x["connection"] for x in sim.stats.logins if x["account"] == "bot")
        closed = next(c for c in sim.stats.closes if c["connection"] == first)
        assert closed["by"] == "client", "we closed it, before the server's grace ran out"
        joined = [j for j in sim.stats.joins if j["connection"] == second]
        assert len(joined) == 3
        assert max(j["time"] for j in joined) <= closed["time"]
        logins = (
            [x for x in sim.stats.logins if x.get("login") == "bot"] if hasattr(sim.stats, "logins") else []
        )
        assert len(logins) in (0, 2)
        assert rig.budgets.asked["twitch.login"] == 2, "the login budget once per connect"


async def test_reader_when_the_login_is_refused_stops_with_one_sentence() -> None:
    async with running(channels=tuple(CHANNELS), accounts={"bot": "right"}) as sim:
        rig = Rig(sim, sim.ws_url, token="wrong")
        with pytest.raises(ConnFatalError, match="refused the login of bot"):
            await asyncio.wait_for(rig.task, 10)
        assert rig.reader.state is ConnState.FATAL


async def test_reader_when_anonymous_reads_without_a_token() -> None:
    async with running(channels=tuple(CHANNELS), rate=200.0) as sim:
        rig = Rig(sim, sim.ws_url, login="justinfan4242", token=None)
        await until(lambda: len(rig.ids()) >= 20, 10, "messages")
        await rig.stop()
        assert rig.reader.state is ConnState.STOPPED


def joins_of(sim: TwitchSimulator, channel: str) -> list[dict[str, object]]:
    return [j for j in sim.stats.joins if j["channel"] == channel]


async def test_reader_when_channels_change_joins_the_new_under_the_budget_and_parts_the_removed() -> None:
    many = tuple(f"chan{i}" for i in range(16))
    async with running(channels=many) as sim:
        # The server's JOIN limit as short as the budget the reader is given: 12 per 2 s.
        limit_account(sim, "bot", join_count=12, join_window=2.0)
        events: list[Event] = []
        budgets = CountingBudgets(join=(12, 2.0))
        reader = TwitchReader(CONN, login="bot", token="abc", channels=["chan0"], url=sim.ws_url,
                              sink=events.append, budgets=budgets)  # fmt: skip
        task = asyncio.ensure_future(reader.run())
        await until(lambda: reader.counters.keys == {"chan0"}, 10, "chan0 joined")
        reader.set_channels(list(many))
        assert reader.counters.keys_pending == 15
        await until(lambda: reader.counters.key_count == 16, 10, "sixteen joined")
        assert sim.stats.violations == [], "never over the server's JOIN limit"
        times = sorted(float(str(j["time"])) for j in sim.stats.joins)
        assert len(times) == 16
        assert times[-1] - times[0] >= 2.0, "the last batch waited for the window"
        assert budgets.asked["twitch.join"] == 16
        reader.set_channels(["chan0", "chan1"])
        await until(lambda: reader.counters.keys == {"chan0", "chan1"}, 10, "the others parted")
        assert sorted(str(p["channel"]) for p in sim.stats.parts) == sorted(many[2:])
        assert reader.describe() == {"role": "read", "login": "bot", "channels": 2, "joined": 2,
                                     "joining": 0, "failed": {}, "backup": False, "rates": {}}  # fmt: skip
        assert budgets.asked["twitch.login"] == 1, "one login for one connect"
        await reader.close()
        await asyncio.wait_for(task, 10)


async def test_reader_when_it_has_no_channels_opens_no_socket_until_it_gets_some() -> None:
    async with running(channels=tuple(CHANNELS)) as sim:
        idle_budgets = CountingBudgets()
        idle = TwitchReader(CONN, login="spare", token="abc", channels=[], url=sim.ws_url,
                            sink=lambda e: None, budgets=idle_budgets, backup=True)  # fmt: skip
        idle_task = asyncio.ensure_future(idle.run())
        busy = Rig(sim, sim.ws_url)
        await until(lambda: busy.reader.counters.key_count == 3, 10, "the busy reader joined")
        assert [x["account"] for x in sim.stats.logins] == ["bot"], "the idle reader opened nothing"
        assert len(sim.stats.opens) == 1
        assert idle_budgets.asked == {}
        assert idle.state is ConnState.READY, "a spare has nothing to wait for"
        idle.set_channels(["#Chan2"])
        await until(lambda: idle.counters.keys == {"chan2"}, 10, "the spare joined its channel")
        assert idle.describe()["backup"] is True
        await busy.stop()
        await idle.close()
        await asyncio.wait_for(idle_task, 10)


async def test_reader_when_a_channel_is_suspended_marks_it_failed_and_retries_it_slowly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "FAILED_RETRY_S", 0.5)
    async with running(channels=tuple(CHANNELS), suspended=frozenset({"chan1"})) as sim:
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.failed == {"chan1": "msg_channel_suspended"}, 10, "chan1 failed")
        await until(lambda: len(joins_of(sim, "chan1")) >= 3, 10, "two retries")
        assert rig.reader.counters.keys == {"chan0", "chan2"}
        await rig.stop()
        assert rig.reader.counters.keys == set(), "a closed reader is in no channel"
        tries = sorted(float(str(j["time"])) for j in joins_of(sim, "chan1"))
        assert all(b - a >= 0.5 for a, b in itertools.pairwise(tries)), "retried once per FAILED_RETRY_S"
        assert rig.reader.describe()["failed"] == {"chan1": "msg_channel_suspended"}
        assert [len(joins_of(sim, c)) for c in ("chan0", "chan2")] == [1, 1], "the others joined once"


async def test_reader_when_a_join_gets_no_answer_fails_that_channel_and_is_ready_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "JOIN_CONFIRM_S", 0.5)
    # "nosuch" is no channel of the simulator: Twitch answers nothing to its JOIN.
    async with running(channels=("chan0", "chan2")) as sim:
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.counters.keys == {"chan0", "chan2"}, 10, "the others joined")
        assert rig.reader.state is ConnState.IDENTIFYING, "not ready while a join is unanswered"
        await until(lambda: "chan1" in rig.reader.failed, 10, "chan1 failed for want of an answer")
        assert rig.reader.failed["chan1"] == reader_module.NO_ANSWER
        assert rig.reader.state is ConnState.READY
        assert rig.reader.counters.keys_pending == 0
        await rig.stop()


async def test_reader_when_one_channel_moves_carries_it_on_a_side_socket_before_the_break() -> None:
    async with running(channels=tuple(CHANNELS), rate=300.0, reconnect_grace=1.0) as sim:
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.counters.key_count == 3, 10, "joined")
        await until(lambda: len(rig.ids()) >= 50, 10, "messages")
        status, body = await admin(sim, "POST", "/_sim/fault", {"kind": "server_change", "channel": "chan1"})
        assert (status, body["applied"]) == (200, 1)
        await until(lambda: len(joins_of(sim, "chan1")) == 3, 10, "chan1 on the side socket, then back")
        await until(lambda: len(sim.connections) == 1, 10, "the side socket closed")
        await quiesce(sim, rig)
        await rig.stop()
        got = rig.ids()
        assert len(got) == len(set(got)), "each message once"
        main, side = (x["connection"] for x in sim.stats.logins)
        first, second, third = joins_of(sim, "chan1")
        assert (first["connection"], second["connection"], third["connection"]) == (main, side, main)
        assert [len(joins_of(sim, c)) for c in ("chan0", "chan2")] == [1, 1], "the other channels stay"
        closes = [c for c in sim.stats.closes if c["connection"] == side]
        assert closes[0]["by"] == "client"
        assert float(str(closes[0]["time"])) >= float(str(third["time"])), "made before the break"
        assert rig.budgets.asked["twitch.login"] == 2


async def test_reader_when_its_ping_gets_no_pong_counts_the_socket_dead_and_reconnects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link_module, "SILENCE_S", 0.3)
    monkeypatch.setattr(link_module, "PONG_DEADLINE_S", 0.3)
    async with running(channels=tuple(CHANNELS)) as sim:  # no traffic: silence
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.counters.key_count == 3, 10, "joined")
        fault = {"kind": "no_pong", "account": "bot", "seconds": 30}
        status, _ = await admin(sim, "POST", "/_sim/fault", fault)
        assert status == 200
        await until(lambda: len(sim.stats.logins) == 2, 10, "a new socket after the missing PONG")
        await until(lambda: rig.reader.counters.key_count == 3, 10, "rejoined")
        first = sim.stats.logins[0]["connection"]
        assert [c["by"] for c in sim.stats.closes if c["connection"] == first] == ["client"]
        assert rig.reader.counters.reconnects == 1
        await rig.stop()


def test_reader_rates_when_measured_report_busy_channels_smoothed() -> None:
    from shardrunner.gateway.twitch import reader as r

    class Clock:
        now = 100.0

        def monotonic(self) -> float:
            return self.now

    clock = Clock()
    reader = TwitchReader.__new__(TwitchReader)
    reader.clock = clock  # type: ignore[assignment]
    reader.lines, reader._rated_at, reader._rates = {}, None, {}
    assert reader.rates() == {}
    reader.lines.update({"#busy": 200, "#quiet": 2})
    clock.now += r.RATE_EVERY_S
    assert reader.rates() == {"busy": 10.0}, "half of 20/s: smoothed from nothing; quiet is not busy"
    reader.lines.update({"#busy": 200})
    clock.now += r.RATE_EVERY_S
    assert reader.rates() == {"busy": 15.0}


async def test_reader_lifecycle_when_a_channel_fails_and_the_socket_is_replaced_then_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reader_module, "FAILED_RETRY_S", 0.3)
    async with running(channels=tuple(CHANNELS), suspended=frozenset({"chan1"})) as sim:
        rig = Rig(sim, sim.ws_url)
        notices: list[Notice] = []
        rig.reader.notify = notices.append  # as the worker's table sets it, before it runs

        def said() -> list[tuple[str, object]]:
            return [(n.kind.removeprefix("shardrunner."), n.fields.get("channel")) for n in notices]

        await until(lambda: ("ready", None) in said(), 10, "ready")
        await until(lambda: len(joins_of(sim, "chan1")) >= 3, 10, "chan1 retried twice")
        assert sorted(said()) == [("channel_failed", "chan1"), ("channel_joined", "chan0"),
                                  ("channel_joined", "chan2"), ("ready", None)]  # fmt: skip
        failed = next(n for n in notices if n.kind == lifecycle.CHANNEL_FAILED)
        assert failed.fields["reason"] == "msg_channel_suspended", "said once, however many retries"
        assert notices[-1] == Notice(lifecycle.READY, CONN, {"session": rig.reader.session_id})
        # Twitch's RECONNECT: the replacement joins before the break; nothing changed for the bot.
        status, _ = await admin(sim, "POST", "/_sim/fault", {"kind": "reconnect", "account": "bot"})
        assert status == 200
        await until(lambda: len(sim.stats.logins) == 2 and len(sim.connections) == 1, 10, "replaced")
        assert len(notices) == 4
        # A drop: one disconnected, then the channels again and ready on the next socket.
        status, _ = await admin(sim, "POST", "/_sim/fault", {"kind": "drop", "account": "bot"})
        assert status == 200
        await until(lambda: said().count(("ready", None)) == 2, 10, "ready again")
        assert said()[4:] == [("disconnected", None), ("channel_joined", "chan0"),
                              ("channel_joined", "chan2"), ("ready", None)]  # fmt: skip
        assert notices[4].fields["resumable"] is False
        await rig.stop()
        assert len(notices) == 8, "a close says nothing"


async def test_reader_when_its_channel_is_raided_answers_every_ping_within_the_deadline() -> None:
    # PING every 0.1 s, 1 s to answer it (Twitch's own deadline is not documented; libraries allow
    # 5-10 s). Three raids on one channel, each its USERNOTICE and then 5,000 chat lines at once;
    # the next raid once the reader has handed the last one's lines on.
    async with running(channels=tuple(CHANNELS), ping_interval=0.1, pong_timeout=1.0, rate=200.0) as sim:
        rig = Rig(sim, sim.ws_url)
        await until(lambda: rig.reader.state is ConnState.READY, 10, "ready")
        await until(lambda: bool(sim.channels["chan1"].members), 10, "chan1 joined")
        [conn] = sim.connections
        seen: set[str] = set()

        def handed_on() -> bool:  # parses only what came since the last look
            for e in rig.events[len(seen_events) :]:
                seen_events.append(e)
                ident = irc.parse(e.data).tags.get("id")
                if ident is not None:
                    seen.add(ident)
            return set(sim.channels["chan1"].ids) <= seen

        seen_events: list[Event] = []
        for n in range(1, 4):
            raid = {"kind": "raid", "channel": "chan1", "lines": 5000}
            assert await admin(sim, "POST", "/_sim/fault", raid) == (200, {"applied": 1})
            await until(lambda n=n: conn.pongs >= 5 * n, 10, f"PINGs answered during raid {n}: {conn.info()}")
            await until(handed_on, 20, f"raid {n} handed on")
        await quiesce(sim, rig)
        status, stats = await admin(sim, "GET", "/_sim/stats")
        assert status == 200
        assert [v for v in stats["violations"] if v["kind"] == "pong_timeout"] == []
        assert stats["closes"] == []
        [info] = stats["connections"]
        assert info["pong_max"] < 1.0, f"a PONG took {info['pong_max']} s"
        raids = [e for e in rig.events if b"msg-id=raid" in e.data and b"USERNOTICE" in e.data]
        assert len(raids) >= 3
        assert len(set(rig.ids())) == len(rig.ids()), "each line handed on once"
        await rig.stop()
