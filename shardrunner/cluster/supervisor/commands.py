"""The control socket: small command objects the supervisor executes for ``shardrunner status``,
``reload``, ``stop``, ``reshard``, ``channels`` and the client's ``endpoints``.

The socket is a ZeroMQ ROUTER bound at ``ipc://RUN_DIR/control.sock``; a request is the JSON
``{"command": NAME, ...}`` and the answer ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
SENTENCE}`` (the caller's side is :mod:`shardrunner.control`). Each command is an object with a
``name``, and its docstring documents it. Commands see the supervisor only through
:class:`ControlTarget`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from typing import Any, ClassVar, Protocol

import msgspec
import zmq
import zmq.asyncio

from shardrunner.cluster.supervisor.status import ClusterStatus
from shardrunner.control import CommandError

log = logging.getLogger("shardrunner.supervisor")


class ControlTarget(Protocol):
    """What the commands need of a supervisor."""

    @property
    def stopping(self) -> bool: ...

    def status(self) -> ClusterStatus: ...

    def endpoints(self) -> dict[str, Any]: ...

    def request_reload(self) -> asyncio.Future[str]:
        """Start a rolling reload (or join the running one); the future says what happened."""

    def request_stop(self) -> str:
        """Start stopping; the sentence tells the user what the stop will leave behind."""

    async def reshard(self, shards: int | None, *, dry_run: bool, abort: bool) -> dict[str, Any]:
        """Plan, start or abort a reshard (``shards`` None: the platform's count)."""

    def channels(self, action: str, names: list[str]) -> dict[str, Any]:
        """Add, remove or list the channels of the platform that has them (CommandError if none)."""


class Command(abc.ABC):
    """One control command: its ``name``, and what the supervisor does for it."""

    name: ClassVar[str]

    @abc.abstractmethod
    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        """Do the command; the result is sent back as JSON."""


class Status(Command):
    """``{"command": "status"}``: the supervisor, every worker (pid, CPU, RSS, connections, state)
    and every connection (state, heartbeat latency, events/s, routing keys, resumes, last resume)."""

    name = "status"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        return target.status()


class Reload(Command):
    """``{"command": "reload"}``: replace every worker, one at a time, handing the sessions over so
    no connection that has a session identifies; answers when done, with what happened."""

    name = "reload"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        if target.stopping:
            raise CommandError("the cluster is stopping")
        return {"message": await target.request_reload()}


class Stop(Command):
    """``{"command": "stop"}``: close every connection resumably, save the sessions, exit. Answers
    at once, saying what the next start will do."""

    name = "stop"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        return {"message": target.request_stop()}


class Reshard(Command):
    """``{"command": "reshard", "shards": N | "auto", "dry_run": false, "abort": false}``: plan a
    reshard and start it (answers at once with the plan; ``status`` shows its progress), only plan
    it (``dry_run``), or abort the running one before its switch (``abort``). A refused reshard is
    an error: one sentence saying why."""

    name = "reshard"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        if target.stopping:
            raise CommandError("the cluster is stopping")
        shards = request.get("shards", "auto")
        if shards == "auto" or shards is None:
            count = None
        elif isinstance(shards, int) and not isinstance(shards, bool) and shards >= 1:
            count = shards
        else:
            raise CommandError(f"shards must be a whole number of at least 1, or auto; not {shards!r}")
        return await target.reshard(
            count, dry_run=bool(request.get("dry_run")), abort=bool(request.get("abort"))
        )


class Channels(Command):
    """``{"command": "channels", "action": "add"|"remove"|"list", "names": [...]}``: change the
    channels a platform with channels (Twitch) reads while it runs, or list them. The changes are
    kept in the run dir and apply at the next start too."""

    name = "channels"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        names = request.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CommandError("names must be a list of channel names")
        return target.channels(str(request.get("action", "list")), names)


class Endpoints(Command):
    """``{"command": "endpoints"}``: the platforms and, per running worker, its bus endpoint and
    connections (how ``shardrunner.client`` finds the workers)."""

    name = "endpoints"

    async def execute(self, target: ControlTarget, request: dict[str, Any]) -> Any:
        return target.endpoints()


COMMANDS: dict[str, Command] = {
    c.name: c for c in (Status(), Reload(), Stop(), Reshard(), Channels(), Endpoints())
}


class ControlServer:
    """Answers control requests on a ROUTER socket, each in a task of its own (a reload takes
    minutes; a status meanwhile answers at once)."""

    def __init__(self, ctx: zmq.asyncio.Context, endpoint: str, target: ControlTarget) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.target = target
        self._sock: zmq.asyncio.Socket | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.bind(self.endpoint)
        self._sock = sock

    async def serve(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart()
            task = asyncio.ensure_future(self._answer(frames))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, frames: list[bytes]) -> None:
        identity, body = frames[0], frames[-1]
        try:
            request = msgspec.json.decode(body)
            name = request.get("command") if isinstance(request, dict) else None
            command = COMMANDS.get(name or "")
            if command is None:
                raise CommandError(f"unknown command {name!r}; known: {', '.join(sorted(COMMANDS))}")
            reply: dict[str, Any] = {"ok": True, "result": await command.execute(self.target, request)}
        except CommandError as exc:
            reply = {"ok": False, "error": str(exc)}
        except msgspec.DecodeError:
            reply = {"ok": False, "error": "the request is not JSON"}
        if self._sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                await self._sock.send_multipart([identity, b"", msgspec.json.encode(reply)])

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
