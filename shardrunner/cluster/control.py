"""The control socket: small command objects the supervisor executes for ``shardrunner status``,
``reload`` and ``stop``.

The socket is a ZeroMQ ROUTER bound at ``ipc://RUN_DIR/control.sock``; a request is the JSON
``{"command": NAME, ...}`` and the answer ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
SENTENCE}``. Each command is an object with a ``name``, and its docstring documents it.
"""

from __future__ import annotations

import abc
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec
import zmq
import zmq.asyncio

if TYPE_CHECKING:
    from shardrunner.cluster.supervisor import Supervisor


class CommandError(RuntimeError):
    """A command could not be done; the message is one sentence for the user."""


def control_endpoint(run_dir: Path) -> str:
    return f"ipc://{run_dir / 'control.sock'}"


class Command(abc.ABC):
    """One control command: its ``name``, and what the supervisor does for it."""

    name: ClassVar[str]

    @abc.abstractmethod
    async def execute(self, supervisor: Supervisor, request: dict[str, Any]) -> Any:
        """Do the command; the result is sent back as JSON."""


class Status(Command):
    """``{"command": "status"}``: the supervisor, every worker (pid, CPU, RSS, shards, state) and every
    shard (state, heartbeat latency, events/s, guilds, resumes, last resume)."""

    name = "status"

    async def execute(self, supervisor: Supervisor, request: dict[str, Any]) -> Any:
        return supervisor.status()


class Reload(Command):
    """``{"command": "reload"}``: replace every worker, one at a time, handing the sessions over so no
    shard identifies; answers when done, with what happened."""

    name = "reload"

    async def execute(self, supervisor: Supervisor, request: dict[str, Any]) -> Any:
        if supervisor.state == "stopping":
            raise CommandError("the cluster is stopping")
        return {"message": await supervisor.request_reload()}


class Stop(Command):
    """``{"command": "stop"}``: close every shard resumably, save the sessions, exit. Answers at once."""

    name = "stop"

    async def execute(self, supervisor: Supervisor, request: dict[str, Any]) -> Any:
        supervisor.request_stop()
        return {"message": "stopping: the sessions will be saved for the next start"}


class Endpoints(Command):
    """``{"command": "endpoints"}``: the shard count and, per running worker, its bus endpoint and
    shard ids (how ``shardrunner.client`` finds the workers)."""

    name = "endpoints"

    async def execute(self, supervisor: Supervisor, request: dict[str, Any]) -> Any:
        return supervisor.endpoints()


COMMANDS: dict[str, Command] = {c.name: c for c in (Status(), Reload(), Stop(), Endpoints())}


async def call(run_dir: Path, command: str, *, timeout: float = 10.0, **fields: Any) -> Any:
    """Send one command to the cluster running in ``run_dir`` and return its result."""
    if not (run_dir / "control.sock").exists():
        raise CommandError(
            f"no cluster is running in {run_dir}: start one with `shardrunner start`, "
            "or pass the --run-dir it uses (or set SHARDRUNNER_RUN_DIR)"
        )
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(control_endpoint(run_dir))
        await sock.send_multipart([b"", msgspec.json.encode({"command": command, **fields})])
        if not await sock.poll(int(timeout * 1000)):
            raise CommandError(f"the cluster in {run_dir} did not answer {command!r} within {timeout:.0f} s")
        frames = await sock.recv_multipart()
        reply = msgspec.json.decode(frames[-1])
    finally:
        sock.close()
        ctx.term()
    if not reply.get("ok"):
        raise CommandError(reply.get("error", "the command failed"))
    return reply.get("result")


def call_sync(run_dir: Path, command: str, *, timeout: float = 10.0, **fields: Any) -> Any:
    return asyncio.run(call(run_dir, command, timeout=timeout, **fields))
