"""examples/controller.py loads as the docs say and does what its docstring promises."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from shardrunner.controller import FatalAction, ReshardProposal, load_controller, overrides
from shardrunner.protocol.keys import ConnKey

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "controller.py"
CONN = ConnKey("discord", 0, 3, 16)


async def test_example_controller_when_loaded_filters_sets_presence_and_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hour = datetime.datetime.now(datetime.UTC).hour
    monkeypatch.setenv("SHARDRUNNER_EXAMPLE_QUIET_HOURS", f"{hour}-{hour + 1}")
    c = load_controller(f"{EXAMPLE}:OpsController")
    assert not overrides(c, "route"), "nothing installed per event beyond the filter"
    assert [c.accept("discord", n, 1) for n in ("MESSAGE_CREATE", "TYPING_START", "PRESENCE_UPDATE")] == [
        True,
        False,
        False,
    ]
    d = await c.identify(CONN, {"intents": 513, "shard": [3, 16]})
    assert d["presence"]["activities"] == [{"name": "shard 3/16", "type": 3}]
    assert await c.twitch_login(CONN, "bot", ["twitch.tv/membership", "twitch.tv/tags"]) == ["twitch.tv/tags"]
    assert await c.on_fatal_close(CONN, 4014) is FatalAction.KEEP
    assert await c.on_fatal_close(CONN, 4004) is FatalAction.STOP
    proposal = ReshardProposal("discord", 16, 32, 40000, 0.98, 0.49, "fill above 0.8")
    assert await c.should_reshard(proposal) is True
    monkeypatch.setenv("SHARDRUNNER_EXAMPLE_QUIET_HOURS", f"{hour + 2}-{hour + 3}")
    assert await load_controller(f"{EXAMPLE}:OpsController").should_reshard(proposal) is False
