"""Twitch as a worker runs it: a changed table's channels to the running readers, and a channel
that changes hands between them said once (``channel_moved``)."""

from __future__ import annotations

from shardrunner.gateway.twitch.config import READ, ConnSpec, PartConfig
from shardrunner.gateway.twitch.platform import TwitchPlatform
from shardrunner.gateway.twitch.reader import TwitchReader
from shardrunner.protocol import lifecycle
from shardrunner.protocol.keys import ConnKey
from shardrunner.protocol.lifecycle import Notice
from tests.fakes import GrantAll
from tests.gateway.twitch.helpers import CountingBudgets

CONNS = [ConnKey("twitch", 0, s, 3) for s in range(3)]


def part(first: list[str], second: list[str], backup: list[str]) -> bytes:
    specs = [
        ConnSpec(READ, "bot", first),
        ConnSpec(READ, "bot", second),
        ConnSpec(READ, "bot", backup, backup=True),
    ]
    return PartConfig(specs, {"bot": "tok"}, "ws://twitch.test").encode()


async def test_platform_reconfigure_when_a_channel_changes_readers_the_one_it_goes_to_says_moved() -> None:
    platform, budgets = TwitchPlatform(), CountingBudgets()
    built = platform.build(
        CONNS, part(["a", "b"], ["c"], ["a", "b"]), {}, lambda e: None, GrantAll(), budgets
    )
    heard: list[Notice] = []
    for reader in built:
        reader.notify = heard.append
    platform.reconfigure(part(["a"], ["c", "b", "d"], ["a", "b"]), dict(zip(CONNS, built, strict=True)))
    readers = [r for r in built if isinstance(r, TwitchReader)]
    assert [r.wanted for r in readers] == [["a"], ["c", "b", "d"], ["a", "b"]]
    assert heard == [
        Notice(lifecycle.CHANNEL_MOVED, CONNS[1], {"channel": "b", "from": "twitch:0/3", "to": "twitch:1/3"})
    ], "the backup reader keeps reading b: only the hand that changed is a move; d is new, not moved"
    budgets.close()
