"""A reading connection against the Twitch simulator: logged in, its channels joined under the
JOIN budget, every message handed on once by id, through a RECONNECT (make before break) and a
drop; a refused login is fatal in one sentence."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from shardrunner.gateway.connection import ConnFatalError, ConnState
from shardrunner.gateway.twitch.reader import TwitchReader
from shardrunner.protocol.envelope import Event
from shardrunner.protocol.keys import ConnKey
from shardrunner.sim.twitch.server import TwitchSimulator
from tests.gateway.twitch.helpers import CountingBudgets, until
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
        tags = (msgspec.json.decode(e.data)["tags"] for e in list(self.events))
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
