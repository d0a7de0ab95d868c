"""``shardrunner status --control`` against a host's TCP control socket (CURVE), served by a
ControlServer on a loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq.asyncio
from click.testing import CliRunner

from shardrunner.cli import main
from shardrunner.cluster.supervisor.commands import ControlServer
from shardrunner.control import NEED_KEYS
from tests.curve_keys import Keys, make_keys

STATUS = {"supervisor": {"state": "running", "pid": 4242}, "workers": [], "conns": []}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Target:
    stopping = False

    def status(self) -> Any:
        return STATUS

    def endpoints(self) -> dict[str, Any]:
        return {"platforms": {}, "workers": []}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[str, Keys]]:
    keys = make_keys(tmp_path)
    loop = asyncio.new_event_loop()
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ready = threading.Event()
    stop: asyncio.Event | None = None

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        ctx = zmq.asyncio.Context()
        server = ControlServer(ctx, f"ipc://{tmp_path}/c.sock", Target(), tcp=endpoint, curve=keys.server())  # type: ignore[arg-type]
        server.bind()
        task = asyncio.ensure_future(server.serve())
        ready.set()
        await stop.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        ctx.destroy(linger=0)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    try:
        yield endpoint, keys
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def test_status_when_given_control_endpoints_asks_the_first_that_answers(host: tuple[str, Keys]) -> None:
    endpoint, keys = host
    dead = f"tcp://127.0.0.1:{free_port()}"
    args = ["status", "--json", "--control", f"{dead},{endpoint}"]
    args += ["--server-key", str(keys.server_public), "--key", str(keys.bot_secret)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == STATUS


def test_status_when_control_is_given_without_keys_says_which_are_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SHARDRUNNER_SERVER_KEY", raising=False)
    monkeypatch.delenv("SHARDRUNNER_BOT_KEY", raising=False)
    result = CliRunner().invoke(main, ["status", "--control", "tcp://127.0.0.1:1"])
    assert result.exit_code == 1
    assert NEED_KEYS in " ".join(result.output.split())


def test_tail_when_given_control_takes_the_remote_options() -> None:
    result = CliRunner().invoke(main, ["tail", "--help"])
    for option in ("--control", "--server-key", "--key"):
        assert option in result.output
