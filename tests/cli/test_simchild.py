"""The ``--sim`` child: started, read, stopped, and dead with its parent even after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from shardrunner.cli.simchild import (
    SimulatorError,
    simulator_command,
    start_simulator,
    twitch_simulator_command,
)
from shardrunner.settings import load_settings

LISTENS = [
    sys.executable,
    "-c",
    "import time; print('listening on http://127.0.0.1:1', flush=True); time.sleep(60)",
]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.02)
    return gone(pid)


def test_start_simulator_when_child_listens_gives_its_url_and_stop_ends_it(tmp_path: Path) -> None:
    sim = start_simulator(LISTENS, tmp_path)
    try:
        assert (sim.url, sim.api_url) == ("http://127.0.0.1:1", "http://127.0.0.1:1/api/v10")
        assert (tmp_path / "sim.log").exists()
    finally:
        sim.stop()
    assert sim.proc.returncode is not None


def test_start_simulator_when_child_exits_first_names_the_log(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError) as info:
        start_simulator([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)
    assert str(info.value) == f"the built-in simulator did not start (see {tmp_path / 'sim.log'})"


def test_start_simulator_when_child_stays_silent_gives_up_and_kills_it(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SimulatorError):
        start_simulator([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, timeout=0.5)
    assert time.monotonic() - started < 15


def test_start_simulator_when_parent_is_killed_the_child_dies_too(tmp_path: Path) -> None:
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from shardrunner.cli.simchild import start_simulator
        sim = start_simulator({LISTENS!r}, Path({str(tmp_path)!r}))
        print(sim.proc.pid, flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not gone(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(child), "the simulator outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
        if parent.stdout:
            parent.stdout.close()


def test_simulator_command_when_shards_auto_asks_for_4_and_the_identify_limits() -> None:
    settings = load_settings({"sim": True, "identify_window": "0.1", "max_concurrency": "2"}, {}, None)
    cmd = simulator_command(settings)
    assert cmd[1:5] == ["-m", "shardrunner", "sim", "discord"]
    args = dict(zip(cmd[5::2], cmd[6::2], strict=True))
    assert args == {
        "--port": "0",
        "--shards": "4",
        "--identify-window": "0.1",
        "--max-concurrency": "2",
        "--rate": "20",
        "--log-level": "warning",
    }


def test_twitch_simulator_command_when_windows_are_short_gives_the_simulator_the_same() -> None:
    from shardrunner.cli.sim import sim_twitch
    from shardrunner.sim.twitch.config import load_twitch_config

    settings = load_settings(
        {"sim": True, "twitch_join_window": "3", "twitch_message_window": "10"}, {}, None
    )
    cmd = twitch_simulator_command(settings, None)
    assert cmd[1:5] == ["-m", "shardrunner", "sim", "twitch"]
    # The simulator's own command line reads them (its options, as it parses them).
    values = dict(sim_twitch.make_context("twitch", cmd[5:]).params)
    values.pop("config", None)
    config, _ = load_twitch_config(values, {}, None)
    assert (config.join_window, config.message_window) == (3.0, 10.0)
    assert config.limits("anyone") == settings_limits(settings)


def settings_limits(settings: Any) -> Any:
    """The limits the cluster paces for, as its discovery reads them (no verified account)."""
    import asyncio

    from shardrunner.gateway.twitch.config import PartConfig
    from shardrunner.gateway.twitch.discovery import discover_from

    plan = asyncio.run(discover_from(settings.replace(twitch_channels="chan0")))
    return PartConfig.decode(plan.part_config()).limits_of("anyone")
