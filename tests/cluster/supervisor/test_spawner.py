"""The real spawner: the worker by module name, its arguments, its log (mode 0600), no secret in
its environment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shardrunner.cluster.exitcodes import BOOT_FAILED
from shardrunner.cluster.supervisor import spawner
from shardrunner.rundir import RunDir


def test_spawner_when_spawning_starts_the_module_with_the_interface_arguments_and_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert spawner.WORKER_MODULE == "shardrunner.cluster.worker"
    monkeypatch.setattr(spawner, "WORKER_MODULE", "tests.cluster.supervisor.echo_worker")
    for name in ("TOKEN", "TWITCH_ACCOUNTS", "COORDINATOR", "COORDINATOR_PASSWORD"):
        monkeypatch.setenv(f"SHARDRUNNER_{name}", "secret")
    assert {
        "SHARDRUNNER_TOKEN",
        "SHARDRUNNER_TWITCH_ACCOUNTS",
        "SHARDRUNNER_COORDINATOR",
    } <= spawner.SECRET_ENV
    handle = spawner.ProcessSpawner(RunDir(tmp_path), "debug").spawn(1, 7, "ipc:///x/workers.sock")
    deadline = time.monotonic() + 20
    while handle.poll() is None:
        assert time.monotonic() < deadline, "the process did not exit"
        time.sleep(0.02)
    assert handle.poll() == BOOT_FAILED
    assert (
        handle.last_words()
        == "--endpoint ipc:///x/workers.sock --slot 1 --generation 7 --log-level debug --log-format text "
        "no-token"
    )
    assert (tmp_path / "worker-1.log").stat().st_mode & 0o777 == 0o600
    handle.send_signal(9)  # gone: nothing happens


def test_spawner_when_a_controller_is_set_passes_it_with_a_files_path_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    by_file = spawner.ProcessSpawner(RunDir(tmp_path), "info", controller="ops/ctl.py:Ops")
    assert by_file.controller_args == ["--controller", f"{tmp_path / 'ops' / 'ctl.py'}:Ops"]
    by_module = spawner.ProcessSpawner(RunDir(tmp_path), "info", controller="mybot.ops:Ops")
    assert by_module.controller_args == ["--controller", "mybot.ops:Ops"]
    assert spawner.ProcessSpawner(RunDir(tmp_path), "info").controller_args == []


def test_last_line_when_the_log_is_empty_or_missing_says_so(tmp_path: Path) -> None:
    assert spawner.last_line(tmp_path / "nope.log") == "no log"
    (tmp_path / "empty.log").write_text("\n \n")
    assert spawner.last_line(tmp_path / "empty.log").startswith("it exited without a word")
