"""shardrunner.rundir: every path of a run directory named once, and which run directory a command means."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shardrunner.rundir import ENV_VAR, RunDir, default_run_dir, resolve_run_dir


def test_run_dir_when_asked_names_every_path_inside_it(tmp_path: Path) -> None:
    d = RunDir(tmp_path)
    assert d.control_endpoint == f"ipc://{tmp_path / 'control.sock'}"
    assert d.workers_endpoint == f"ipc://{tmp_path / 'workers.sock'}"
    assert d.bus_endpoint(2, 7) == f"ipc://{tmp_path / 'bus-2-7.sock'}"
    assert {d.pid_file.name, d.state_file.name, d.sim_log.name, d.worker_log(3).name} == {
        "supervisor.pid", "sessions.json", "sim.log", "worker-3.log",
    }  # fmt: skip
    d.bus_sock(1, 1).touch()
    d.bus_sock(0, 4).touch()
    assert [p.name for p in d.bus_socks()] == ["bus-0-4.sock", "bus-1-1.sock"]


def test_resolve_run_dir_when_no_option_takes_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env"))
    assert resolve_run_dir("given") == Path("given")
    assert resolve_run_dir() == tmp_path / "env"
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert resolve_run_dir() == tmp_path / "shardrunner" == Path(default_run_dir())
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_run_dir() == f"/tmp/shardrunner-{os.getuid()}"


def test_supervisor_pid_when_the_process_is_gone_or_the_file_is_bad_is_none(tmp_path: Path) -> None:
    d = RunDir(tmp_path)
    assert d.supervisor_pid() is None  # no file
    d.pid_file.write_text("not a pid\n")
    assert d.supervisor_pid() is None
    d.pid_file.write_text(f"{os.getpid()}\n")
    assert d.supervisor_pid() == os.getpid()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    d.pid_file.write_text(f"{gone.pid}\n")
    assert d.supervisor_pid() is None
