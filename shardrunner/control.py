"""The control call: one request to a running cluster's supervisor, shared by the CLI and bots.

The supervisor binds a ZeroMQ ROUTER at ``ipc://RUN_DIR/control.sock``; a request is the JSON
``{"command": NAME, ...}`` and the answer ``{"ok": true, "result": ...}`` or ``{"ok": false,
"error": SENTENCE}``. Only pyzmq and msgspec are loaded here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgspec
import zmq
import zmq.asyncio

from shardrunner.rundir import RunDir


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
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(where.control_endpoint)
        await sock.send_multipart([b"", msgspec.json.encode({"command": command, **fields})])
        if not await sock.poll(int(timeout * 1000)):
            gone = _not_running(where)
            if gone is not None:
                raise gone
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


def check_running(run_dir: Path) -> None:
    """Raise CommandError (the sentence :func:`call` would give) unless a cluster may be running in
    ``run_dir``: for commands that reach the cluster another way (``tail``, over the bus)."""
    gone = _not_running(RunDir(run_dir))
    if gone is not None:
        raise gone
