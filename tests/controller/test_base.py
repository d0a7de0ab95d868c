"""The controller's base class: every hook's default, which hooks a subclass overrides, and an
import that loads nothing of the cluster or the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shardrunner.controller import Controller, FatalAction, ReshardProposal, overridden, overrides
from shardrunner.protocol.keys import ConnKey

CONN = ConnKey("discord", 0, 3, 8)
ROOT = Path(__file__).resolve().parents[2]


class Filter(Controller):
    def accept(self, platform: str, name: str, key: int | str | None) -> bool:
        return name != "TYPING_START"

    async def on_ready(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        pass


async def test_controller_when_nothing_is_overridden_every_hook_gives_the_default() -> None:
    c = Controller()
    assert c.accept("discord", "MESSAGE_CREATE", 1)
    assert c.route("bot", "MESSAGE_CREATE", 1, ["a", "b"]) is None
    payload = {"intents": 1, "shard": [3, 8]}
    assert await c.identify(CONN, payload) is payload
    assert await c.twitch_login(CONN, "bot", ["twitch.tv/tags"]) == ["twitch.tv/tags"]
    proposal = ReshardProposal("discord", 4, 8, 9000, 0.9, 0.45, "fill above 0.8")
    assert await c.should_reshard(proposal) is True
    assert await c.take_lease(2, "host-b") is True
    assert await c.on_fatal_close(CONN, 4004) is FatalAction.STOP
    assert await c.on_ready(CONN, {}) is None
    assert (c.hook_timeout, c.stall_after) == (2.0, 0.1)


def test_overrides_when_a_subclass_replaces_some_hooks_names_only_those() -> None:
    c = Filter()
    hooks = ("accept", "route", "identify", "on_ready", "on_resumed", "should_reshard")
    assert [h for h in hooks if overrides(c, h)] == ["accept", "on_ready"]
    assert not any(overrides(Controller(), h) for h in hooks)


def test_overrides_when_an_instance_is_given_a_hook_of_its_own_counts_it() -> None:
    c = Controller()
    c.route = lambda group, name, key, members: None  # type: ignore[method-assign]
    assert overrides(c, "route")
    assert not overrides(c, "accept")


def test_controller_when_imported_alone_loads_no_cluster_gateway_or_settings_module() -> None:
    code = (
        "import json, sys; import shardrunner.controller; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('shardrunner'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=30
    )
    loaded = json.loads(out.stdout)
    assert "shardrunner.controller" in loaded
    heavy = ("shardrunner.cluster", "shardrunner.gateway", "shardrunner.settings", "shardrunner.bus")
    assert [m for m in loaded if m.startswith(heavy)] == []


def test_overridden_when_asked_lists_the_hooks_in_the_class_order() -> None:
    assert overridden(Filter()) == ["accept", "on_ready"]
    assert overridden(Controller()) == []
