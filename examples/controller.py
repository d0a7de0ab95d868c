"""An operator's controller: run with

    shardrunner start --controller examples/controller.py:OpsController

(or ``controller = "examples/controller.py:OpsController"`` in the config file). The supervisor and
every worker make one ``OpsController()``; each hook below runs in the process that decides what it
answers (docs/controllers.md). What it does:

- every shard shows its own presence ("watching shard 3/16"), so a glance at the bot's profile on
  a server says which shard serves it;
- TYPING_START and PRESENCE_UPDATE never reach the bus (most bots never use them, and they are a
  large share of a big bot's traffic): dropped in the worker, before the router;
- Twitch readers do not request JOIN/PART of other users (the membership capability): big channels
  send a lot of it;
- a fatal close is logged with what to do; an authentication failure (4004) stops the cluster as
  without a controller, a disallowed intent (4014) on one shard keeps the others running;
- automatic reshards wait for the quiet hours (``QUIET_HOURS``, UTC, default 03-06): a reshard
  identifies every new shard, and the bot's users notice least then;
- a worker crash is logged where the operator's alerting looks (here: a logger of its own).

Configuration comes from the environment (the controller is made with no arguments):
``SHARDRUNNER_EXAMPLE_QUIET_HOURS=3-6``, ``SHARDRUNNER_EXAMPLE_ACTIVITY="shard {shard}/{count}"``.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from typing import Any

from shardrunner.controller import Controller, FatalAction, ReshardProposal
from shardrunner.protocol.keys import ConnKey

log = logging.getLogger("example.controller")

#: Events dropped before the bus.
UNWANTED = frozenset({"TYPING_START", "PRESENCE_UPDATE"})
#: Discord's activity type 3: "Watching ...".
WATCHING = 3


def quiet_hours(text: str) -> tuple[int, int]:
    """``"3-6"`` -> (3, 6): the UTC hours, start included, end excluded."""
    start, _, end = text.partition("-")
    return int(start) % 24, int(end or start) % 24


class OpsController(Controller):
    """See the module."""

    #: The decisions and callbacks below are quick; a hook stuck on a network call gets 2 s.
    hook_timeout = 2.0

    def __init__(self) -> None:
        self.quiet = quiet_hours(os.environ.get("SHARDRUNNER_EXAMPLE_QUIET_HOURS", "3-6"))
        self.activity = os.environ.get("SHARDRUNNER_EXAMPLE_ACTIVITY", "shard {shard}/{count}")

    # -- the hot path: as cheap as it can be (a set lookup) --------------------------------------
    def accept(self, platform: str, name: str, key: int | str | None) -> bool:
        return name not in UNWANTED

    # route() is not overridden: the default rendezvous stickiness keeps each guild on one member,
    # and nothing is installed for it (an override would be called for every event of every group).

    # -- how connections start -----------------------------------------------------------------
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        name = self.activity.format(shard=conn.shard, count=conn.count)
        payload["presence"] = {
            "since": None,
            "activities": [{"name": name, "type": WATCHING}],
            "status": "online",
            "afk": False,
        }
        return payload

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        return [c for c in caps if c != "twitch.tv/membership"]

    # -- decisions -------------------------------------------------------------------------------
    async def on_fatal_close(self, conn: ConnKey, code: int) -> FatalAction:
        if code == 4014 and conn.platform == "discord":
            log.error(
                "%s closed with 4014 (a privileged intent is not enabled for the bot): the other "
                "shards go on; enable the intent in the developer portal, then reload",
                conn,
            )
            return FatalAction.KEEP
        log.error("%s closed fatally with %d: stopping the cluster", conn, code)
        return FatalAction.STOP

    async def should_reshard(self, proposal: ReshardProposal) -> bool:
        hour = datetime.datetime.now(datetime.UTC).hour
        start, end = self.quiet
        inside = start <= hour < end if start <= end else hour >= start or hour < end
        if not inside:
            log.info(
                "a reshard of %s to %d is due (%s): waiting for the quiet hours %02d-%02d UTC",
                proposal.platform,
                proposal.count,
                proposal.reason,
                start,
                end,
            )
        return inside

    # -- lifecycle -------------------------------------------------------------------------------
    async def on_fatal(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        log.error("fatal close of %s: %s", conn, dict(info))

    async def on_worker_crashed(self, conn: ConnKey | None, info: Mapping[str, Any]) -> None:
        log.error("a worker crashed: %s", dict(info))
