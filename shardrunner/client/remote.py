"""Where the client asks for the workers: the local run dir's control socket, or (``control=``,
``SHARDRUNNER_CONTROL``) the TCP control sockets of hosts elsewhere, with CURVE.

In TCP mode each discovery tries the endpoint that answered last, then the hosts the last answer
named (its ``hosts`` list: the cluster's live hosts and their control endpoints), then the
configured ones, so a bot follows hosts as they come and go. Workers are reached at their ``tcp``
endpoint with the same keys. Local mode is the plain control call it always was.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from shardrunner.client.errors import ClientError
from shardrunner.control import CommandError, call, call_any
from shardrunner.curve import CurveError, CurveKeys
from shardrunner.rundir import RunDir

CONTROL_ENV = "SHARDRUNNER_CONTROL"
SERVER_KEY_ENV = "SHARDRUNNER_SERVER_KEY"
BOT_KEY_ENV = "SHARDRUNNER_BOT_KEY"


def _endpoints(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else value
    return [e.strip() for e in items if e.strip()]


class Discovery:
    """Asks a cluster's supervisors; the client's only way to them."""

    def __init__(
        self,
        run_dir: Path,
        control: str | list[str] | None = None,
        server_key: str | None = None,
        key: str | None = None,
        env: Mapping[str, str] = os.environ,
    ) -> None:
        self.run_dir = run_dir
        #: The configured control endpoints (empty: local mode).
        self.control = _endpoints(control) or _endpoints(env.get(CONTROL_ENV))
        self.curve: CurveKeys | None = None
        #: The control endpoints of the hosts the last answer listed.
        self.hosts: list[str] = []
        #: Local mode: the other hosts' control sockets (ipc) the last answer listed, asked when
        #: the run dir's supervisor is gone (killed: its host's blocks went to the others).
        self.local_hosts: list[str] = []
        #: The endpoint that answered last.
        self.last = ""
        if self.control:
            server_key = server_key or env.get(SERVER_KEY_ENV)
            key = key or env.get(BOT_KEY_ENV)
            if not server_key or not key:
                raise ClientError(
                    "control endpoints on TCP need CURVE keys: give server_key= (the server's public "
                    f"key file, or {SERVER_KEY_ENV}) and key= (this bot's secret key file, or {BOT_KEY_ENV})"
                )
            try:
                self.curve = CurveKeys.load(server_key, key)
            except CurveError as exc:
                raise ClientError(str(exc)) from None

    @property
    def remote(self) -> bool:
        return bool(self.control)

    def order(self) -> list[str]:
        """The control endpoints to try, best first, each once."""
        seen: dict[str, None] = {}
        for endpoint in ([self.last] if self.last else []) + self.hosts + self.control:
            seen.setdefault(endpoint, None)
        return list(seen)

    async def ask(self, command: str, *, timeout: float = 5.0, **fields: Any) -> Any:
        """One control command (``endpoints``, ``status``): ClientError with the reason otherwise."""
        try:
            if not self.remote:
                result = await self._ask_local(command, timeout, fields)
            else:
                self.last, result = await call_any(
                    self.order(), command, curve=self.curve, timeout=timeout, **fields
                )
        except CommandError as exc:
            raise ClientError(str(exc)) from None
        if command == "endpoints" and isinstance(result, dict):
            hosts = [h for h in result.get("hosts") or [] if isinstance(h, dict)]
            self.hosts = [str(h["control"]) for h in hosts if h.get("control")]
            if not self.remote:
                own = RunDir(self.run_dir).control_endpoint
                self.local_hosts = [str(h["local"]) for h in hosts if h.get("local") and h["local"] != own]
        return result

    async def _ask_local(self, command: str, timeout: float, fields: dict[str, Any]) -> Any:
        """The run dir's supervisor; once it is gone, the other hosts on this machine that the
        last answer listed (the one that answered last first)."""
        try:
            result = await call(self.run_dir, command, timeout=timeout, **fields)
        except CommandError as exc:
            if not self.local_hosts:
                raise
            others = list(dict.fromkeys(([self.last] if self.last else []) + self.local_hosts))
            try:
                self.last, result = await call_any(others, command, timeout=min(timeout, 2.0), **fields)
            except CommandError as again:
                raise CommandError(f"{exc}; {again}") from None
            return result
        self.last = ""
        return result

    def worker_endpoint(self, worker: Mapping[str, Any]) -> str | None:
        """Where to reach a worker of the ``endpoints`` answer: its ipc ``endpoint`` locally, its
        ``tcp`` one in TCP mode (None when it has none: not reachable from here)."""
        if not self.remote:
            return str(worker["endpoint"])
        tcp = worker.get("tcp")
        return str(tcp) if tcp else None
