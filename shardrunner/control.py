"""The control call: one request to a running cluster's supervisor, shared by the CLI and bots.

The supervisor binds a ZeroMQ ROUTER at ``ipc://RUN_DIR/control.sock``; a request is the JSON
``{"command": NAME, ...}`` and the answer ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": SENTENCE}``. Only pyzmq and msgspec are loaded here.

A supervisor started with ``--control-bind`` answers ``endpoints`` and ``status`` on TCP too, as a
CURVE server: :func:`call_endpoint` reaches any endpoint (with :class:`~shardrunner.curve.CurveKeys`
for a ``tcp://`` one), :func:`call_any` tries several in turn (a bot's ``control=`` list, and the
hosts the answers name).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from shardrunner.curve import CurveKeys
from shardrunner.rundir import RunDir

#: Seconds a TCP endpoint may take to accept the connection and the CURVE handshake.
CONNECT_TIMEOUT_S = 3.0
NEED_KEYS = (
    "a tcp:// control endpoint needs CURVE keys: give the server's public key (server_key=, "
    "SHARDRUNNER_SERVER_KEY or --server-key) and the bot's secret key (key=, SHARDRUNNER_BOT_KEY or --key)"
)


class CommandError(RuntimeError):
    """A command could not be done; the message is one sentence for the user."""


def _not_running(run_dir: RunDir) -> CommandError | None:
    if not run_dir.control_sock.exists():
        return CommandError(
            f"no cluster is running in {run_dir.path}: start one with `shardrunner start`, "
            "or pass the --run-dir it uses (or set SHARDRUNNER_RUN_DIR)"
        )
    if run_dir.pid_file.exists() and run_dir.supervisor_pid() is None:
        return CommandError(
            f"the cluster in {run_dir.path} is not running: its supervisor is gone (it was killed or "
            "crashed); start it again with `shardrunner start`"
        )
    return None


async def call(run_dir: Path, command: str, *, timeout: float = 10.0, **fields: Any) -> Any:
    """Send one command to the cluster running in ``run_dir`` and return its result."""
    where = RunDir(run_dir)
    gone = _not_running(where)
    if gone is not None:
        raise gone
    try:
        return await call_endpoint(where.control_endpoint, command, timeout=timeout, **fields)
    except _NoAnswer:
        gone = _not_running(where)
        if gone is not None:
            raise gone from None
        raise CommandError(
            f"the cluster in {run_dir} did not answer {command!r} within {timeout:.0f} s"
        ) from None


class _NoAnswer(CommandError):
    """The endpoint did not answer in time (or, on TCP, could not be reached)."""


async def call_endpoint(
    endpoint: str, command: str, *, curve: CurveKeys | None = None, timeout: float = 10.0, **fields: Any
) -> Any:
    """Send one command to the control socket at ``endpoint`` (``ipc://`` or ``tcp://``, the latter
    with ``curve``) and return its result; CommandError with one sentence otherwise."""
    tcp = endpoint.startswith("tcp://")
    if tcp and curve is None:
        raise CommandError(NEED_KEYS)
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        if tcp:
            assert curve is not None
            curve.apply(sock)
            # Writable only once connected and past the CURVE handshake: a dead or refusing host
            # is told apart from a slow answer.
            sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.connect(endpoint)
        connect_ms = int(min(timeout, CONNECT_TIMEOUT_S) * 1000)
        if tcp and not await sock.poll(connect_ms, zmq.POLLOUT):  # type: ignore[call-arg]
            raise _NoAnswer(
                f"cannot reach the control socket {endpoint} (no host listens there, or it refused "
                "this bot's CURVE key)"
            )
        await sock.send_multipart([b"", msgspec.json.encode({"command": command, **fields})])
        if not await sock.poll(int(timeout * 1000)):
            raise _NoAnswer(f"{endpoint} did not answer {command!r} within {timeout:.0f} s")
        frames = await sock.recv_multipart()
    finally:
        sock.close()
        ctx.term()
    try:
        reply = msgspec.json.decode(frames[-1])
    except msgspec.DecodeError:
        reply = None
    if not isinstance(reply, dict):
        raise CommandError(f"{endpoint} did not answer {command!r} with a control answer (a JSON object)")
    if not reply.get("ok"):
        raise CommandError(str(reply.get("error", "the command failed")))
    return reply.get("result")


async def call_any(
    endpoints: list[str],
    command: str,
    *,
    curve: CurveKeys | None = None,
    timeout: float = 10.0,
    **fields: Any,
) -> tuple[str, Any]:
    """Try each endpoint in turn until one answers: (that endpoint, its result). A refusal (the
    command failed there) is final; only endpoints that cannot be reached are passed over."""
    reasons = []
    for endpoint in endpoints:
        try:
            return endpoint, await call_endpoint(endpoint, command, curve=curve, timeout=timeout, **fields)
        except _NoAnswer as exc:
            reasons.append(str(exc))
    if not reasons:
        raise CommandError("no control endpoint is given")
    raise CommandError("no control endpoint answered: " + "; ".join(reasons))


def call_sync(run_dir: Path, command: str, *, timeout: float = 10.0, **fields: Any) -> Any:
    return asyncio.run(call(run_dir, command, timeout=timeout, **fields))


def check_running(run_dir: Path) -> None:
    """Raise CommandError (the sentence :func:`call` would give) unless a cluster may be running in
    ``run_dir``: for commands that reach the cluster another way (``tail``, over the bus)."""
    gone = _not_running(RunDir(run_dir))
    if gone is not None:
        raise gone
