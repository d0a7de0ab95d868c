"""Client processes for the tests that run real clients (JavaScript, and a Python one): finding node
and npm, installing a project's pinned packages (``npm ci``) once, and a process read by JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections import deque
from pathlib import Path
from typing import Any, Final

import pytest

NPM_TIMEOUT: Final = 180.0


def node_tools(what: str) -> tuple[str, str]:
    """The paths of node and npm; the test fails with one sentence when they are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail(
            f"node and npm are required for {what} (node: {node}, npm: {npm}); install Node.js >= 20 "
            "(CI has it)",
            pytrace=False,
        )
    return node, npm


async def ensure_installed(npm: str, project: Path) -> None:
    """``npm ci`` the pinned packages of ``project`` unless a completed install is there already."""
    # npm writes node_modules/.package-lock.json last: without it the install is missing or partial.
    if (project / "node_modules" / ".package-lock.json").is_file():
        return
    proc = await asyncio.create_subprocess_exec(
        npm,
        "ci",
        "--no-audit",
        "--no-fund",
        cwd=project,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), NPM_TIMEOUT)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"npm ci in {project} did not finish within {NPM_TIMEOUT:.0f} s", pytrace=False)
    if proc.returncode != 0:
        text = out.decode(errors="replace")
        pytest.fail(f"npm ci in {project} failed with {proc.returncode}:\n{text}", pytrace=False)


class JsonLinesProcess:
    """A client process the test talks to over pipes: every JSON line it prints (``events``,
    each also passed to :meth:`on_event`), the tail of its stderr, and a stop or kill that leaves
    no reader behind. stderr is drained all along: Node writes pipes synchronously and would block
    on a full one."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self.stderr: deque[str] = deque(maxlen=60)
        self._readers = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]

    @staticmethod
    async def spawn(*argv: str, cwd: Path, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NODE_NO_WARNINGS": "1", **(env or {})},
        )

    def on_event(self, event: dict[str, Any]) -> None:
        """Called for every JSON line, after it is added to ``events``."""

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            try:
                event = json.loads(line)
            except ValueError:
                self.stderr.append(f"(stdout, not JSON) {line}")
                continue
            self.events.append(event)
            self.on_event(event)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.stderr.append(raw.decode(errors="replace").rstrip())

    async def stop(self, timeout: float = 10.0) -> int:
        """Close stdin (the client then quits); return its exit code. The readers end at EOF: after
        this, every line the client printed is in ``events``."""
        assert self.proc.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.proc.stdin.close()
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(*self._readers), timeout)
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
