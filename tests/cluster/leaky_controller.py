"""A controller for tests/cluster/test_secrets_processes.py that fails as loudly as it can: its
hooks raise with everything they were given in the message (so the traceback in the worker's log
shows what a controller sees). None of it may carry a secret."""

from __future__ import annotations

from typing import Any

from shardrunner.controller import Controller
from shardrunner.protocol.keys import ConnKey


class Leaky(Controller):
    async def identify(self, conn: ConnKey, payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError(f"identify of {conn} refused, given {payload!r}")

    async def twitch_login(self, conn: ConnKey, nick: str, caps: list[str]) -> list[str]:
        raise RuntimeError(f"login of {conn} as {nick!r} with {caps!r} refused")
