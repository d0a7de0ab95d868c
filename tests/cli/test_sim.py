"""`shardrunner sim discord` as a real process: starts, serves, stops on SIGTERM, refuses bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import pytest

from harness.procs import free_port
from tests.conftest import TOKEN


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shardrunner", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def sim_process() -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardrunner", "sim", "discord", "--port", str(port), "--token", TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the process prints one line once it listens
        assert f"listening on http://127.0.0.1:{port}" in line, line + (
            proc.stderr.read() if proc.stderr else ""
        )
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_sim_cli_when_started_serves_rest_and_stops_on_sigterm(
    sim_process: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = sim_process
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v10/gateway/bot", headers={"Authorization": f"Bot {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["Content-Type"] == "application/json"
        body = json.loads(r.read())
    assert body["url"] == f"ws://127.0.0.1:{port}"
    assert body["shards"] == 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    assert proc.stderr is not None
    assert TOKEN not in proc.stderr.read(), "the token must never be printed"


def test_sim_cli_when_port_in_use_fails_with_one_sentence(
    sim_process: tuple[subprocess.Popen[str], int],
) -> None:
    _proc, port = sim_process
    result = run_cli("sim", "discord", "--port", str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-members", "50", "--max-members", "5"], "--max-members must be at least --min-members"),
        (["--faults", "reconnect,meteor"], "--faults: unknown kind 'meteor'"),
        (["--mix", "MESSAGE_CREATE=x"], "--mix: weight of 'MESSAGE_CREATE' is not a number"),
        (["--mix", "NOT_AN_EVENT=1"], "--mix: unknown dispatch 'NOT_AN_EVENT'"),
        (["--token", "not-a-token"], "--token does not look like a Discord bot token"),
        (["--replay-compress", "gzip"], "'gzip' is not a valid Compression"),
        (["--rate", "fast"], "'fast' is not a number or 'max'"),
    ],
)
def test_sim_cli_when_options_invalid_exits_2_naming_the_option(args: list[str], message: str) -> None:
    started = time.monotonic()
    result = run_cli("sim", "discord", "--port", "0", *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_cli_help_explains_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "sim" in result.stdout
    result = run_cli("sim", "discord", "--help")
    assert result.returncode == 0
    for option in ("--replay", "--fault-rate", "--identify-window", "--max-concurrency", "--resume-window"):
        assert option in result.stdout


def test_sim_cli_when_config_has_unknown_setting_names_it(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "bad.toml"  # type: ignore[operator]
    path.write_text("porst = 3\n")
    result = run_cli("sim", "discord", "--config", str(path))
    assert result.returncode == 2
    assert "unknown setting 'porst'" in result.stderr


def test_sim_cli_when_config_file_given_uses_its_settings(tmp_path: pytest.TempPathFactory) -> None:
    port = free_port()
    path = tmp_path / "sim.toml"  # type: ignore[operator]
    path.write_text(f'port = {port}\nshards = 3\nfaults = ["drop", "zombie"]\nrate = 5\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "shardrunner", "sim", "discord", "--config", str(path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"127.0.0.1:{port}" in proc.stdout.readline()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v10/gateway/bot", headers={"Authorization": f"Bot {TOKEN}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.loads(r.read())["shards"] == 3
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()


def test_sim_cli_when_privileged_intents_unknown_names_the_option() -> None:
    result = run_cli("sim", "discord", "--privileged-intents", "members,everything")
    assert result.returncode == 2
    assert "'everything' is not one of members, presences, message_content, none" in result.stderr
