"""The control socket: small command objects the supervisor executes for ``shardrunner status``,
``reload``, ``stop``, ``reshard``, ``channels`` and the client's ``endpoints``.

The socket is a ZeroMQ ROUTER bound at ``ipc://RUN_DIR/control.sock``; a request is the JSON
``{"command": NAME, ...}`` and the answer ``{"ok": true, "result": ...}`` or ``{"ok": false, "error":
SENTENCE}`` (the caller's side is :mod:`shardrunner.control`). Each command is an object with a
``name``, and its docstring documents it. Commands see the supervisor only through
:class:`ControlTarget`.

With ``--control-bind`` the same server also answers on TCP, as a CURVE server, for bots and
operators on other machines: there only the commands that look (:data:`REMOTE_COMMANDS`) are
answered; the ones that change the cluster stay on the ipc socket in the 0700 run dir.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from typing import Any, ClassVar, Final, Protocol

import msgspec
import zmq
import zmq.asyncio

from shardrunner.cluster.supervisor.status import ClusterStatus
from shardrunner.control import CommandError
from shardrunner.curve import CurveServer, restrict_ipc, tcp_bind

log = logging.getLogger("shardrunner.supervisor")

#: A larger request closes its peer's connection unread (ZeroMQ's MAXMSGSIZE; a channels add of
#: 100,000 names is about 3 MB).
MAX_REQUEST_BYTES: Final = 16 << 20
#: Requests answered at once; past that the next ones are refused until some are done.
MAX_PENDING: Final = 256


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
#: The commands answered on the TCP control socket: they look, they change nothing.
REMOTE_COMMANDS: frozenset[str] = frozenset({"endpoints", "status"})


def remote_refusal(name: str) -> str:
    """The sentence a command that changes the cluster is refused with on TCP."""
    return (
        f"{name} is not answered on the TCP control socket (only {', '.join(sorted(REMOTE_COMMANDS))} "
        "are): run it on the host itself, where the local ipc socket in the run dir is reachable only "
        "by the cluster's user"
    )


class ControlServer:
    """Answers control requests on a ROUTER socket, each in a task of its own (a reload takes
    minutes; a status meanwhile answers at once)."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        endpoint: str,
        target: ControlTarget,
        *,
        tcp: str = "",
        curve: CurveServer | None = None,
    ) -> None:
        if tcp and curve is None:
            raise ValueError("a TCP control socket needs CURVE keys")
        self._ctx = ctx
        self.endpoint = endpoint
        self.target = target
        self._tcp_bind = tcp
        self._curve = curve
        #: The TCP endpoint as bound (``tcp://ADDR:PORT``), once :meth:`bind` ran with ``tcp``.
        self.tcp_endpoint = ""
        self._sock: zmq.asyncio.Socket | None = None
        self._tcp: zmq.asyncio.Socket | None = None
        self._auth: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: Requests answered with an error (bad ones, and refused ones) since the start.
        self.refused = 0

    def bind(self) -> None:
        sock = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        sock.bind(self.endpoint)
        restrict_ipc(self.endpoint)
        self._sock = sock
        if self._tcp_bind and self._curve is not None:
            # The context's ZAP handler: the workers' link sockets on this context are NULL, untouched.
            self._auth = self._curve.authenticator(self._ctx)
            tcp = self._ctx.socket(zmq.ROUTER)
            tcp.setsockopt(zmq.LINGER, 1000)
            tcp.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
            self._curve.apply(tcp)
            tcp.bind(tcp_bind(self._tcp_bind))
            self._tcp = tcp
            self.tcp_endpoint = tcp.getsockopt_string(zmq.LAST_ENDPOINT)
            log.info("control also on %s (CURVE; endpoints and status only)", self.tcp_endpoint)

    async def serve(self) -> None:
        assert self._sock is not None
        loops = [self._serve(self._sock, remote=False)]
        if self._tcp is not None:
            loops.append(self._serve(self._tcp, remote=True))
        await asyncio.gather(*loops)

    async def _serve(self, sock: zmq.asyncio.Socket, *, remote: bool) -> None:
        while True:
            frames = await sock.recv_multipart()
            if len(self._tasks) >= MAX_PENDING:
                # A peer sending requests faster than they are answered (a reload takes minutes):
                # the next ones are refused at once, so its flood stays bounded.
                self.refused += 1
                with contextlib.suppress(zmq.ZMQError):
                    reply = {"ok": False, "error": f"{MAX_PENDING} requests are in progress: try again later"}
                    await sock.send_multipart([frames[0], b"", msgspec.json.encode(reply)])
                continue
            task = asyncio.ensure_future(self._answer(sock, frames, remote))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _answer(self, sock: zmq.asyncio.Socket, frames: list[bytes], remote: bool) -> None:
        identity, body = frames[0], frames[-1]
        try:
            if len(frames) < 2:
                raise CommandError("a control request is a JSON object after an empty frame")
            request = msgspec.json.decode(body)
            if not isinstance(request, dict):
                raise CommandError('a control request is a JSON object: {"command": NAME, ...}')
            name = request.get("command")
            command = COMMANDS.get(name) if isinstance(name, str) else None
            if command is None:
                shown = repr(name)[:80]
                raise CommandError(f"unknown command {shown}; known: {', '.join(sorted(COMMANDS))}")
            if remote and command.name not in REMOTE_COMMANDS:
                raise CommandError(remote_refusal(command.name))
            reply: dict[str, Any] = {"ok": True, "result": await command.execute(self.target, request)}
        except CommandError as exc:
            reply = {"ok": False, "error": str(exc)}
        except msgspec.DecodeError:
            reply = {"ok": False, "error": "the request is not JSON"}
        except Exception as exc:  # a request of a shape no command expected: answered, logged, served on
            log.exception("a control request failed")
            failed = f"the request failed ({type(exc).__name__}): see the supervisor's log"
            reply = {"ok": False, "error": failed}
        if not reply["ok"]:
            self.refused += 1
        if sock in (self._sock, self._tcp):
            with contextlib.suppress(zmq.ZMQError):
                await sock.send_multipart([identity, b"", msgspec.json.encode(reply)])

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for sock in (self._sock, self._tcp):
            if sock is not None:
                sock.close()
        self._sock = self._tcp = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
