"""Node.js for the tests that run real JavaScript clients: finding node and npm, and installing a
project's pinned packages (``npm ci``) once."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Final

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
