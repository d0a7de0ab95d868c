"""``shardrunner start`` up to the supervisor: settings, the run dir, the token, ``--sim`` wiring.

The supervisor itself is replaced by a stand-in: these tests need no working cluster.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from shardrunner.cli import main, start
from shardrunner.rundir import RunDir
from shardrunner.settings import Settings
from shardrunner.sim.discord.world import DEFAULT_BOT_ID, make_token

TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhIjKl.secret-part"


@pytest.fixture
def ran(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings the supervisor stand-in was run with (it returns at once, status 0)."""
    seen: list[Settings] = []

    def fake(settings: Settings) -> tuple[int, str | None]:
        seen.append(settings)
        return 0, None

    monkeypatch.setattr(start, "_run_supervisor", fake)
    return seen


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["start", *args], env=env)
    assert "Traceback" not in result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_start_when_token_is_malformed_refuses_it_locally_without_echoing_it(
    tmp_path: Path, ran: list[Settings]
) -> None:
    code, output = invoke("--run-dir", str(tmp_path), env={"SHARDRUNNER_TOKEN": "my-client-secret"})
    assert code == 2
    assert "invalid setting token: must be a Discord bot token" in output
    assert "(got *** from environment variable SHARDRUNNER_TOKEN)" in output
    assert "my-client-secret" not in output
    assert ran == []


def test_start_when_token_option_is_malformed_names_the_option(tmp_path: Path, ran: list[Settings]) -> None:
    code, output = invoke("--run-dir", str(tmp_path), "--token", "Bot " + TOKEN)
    assert code == 2
    assert "(got *** from command line --token)" in output
    assert TOKEN not in output


def test_start_when_settings_are_fine_runs_the_supervisor_with_them(
    tmp_path: Path, ran: list[Settings]
) -> None:
    code, output = invoke("--run-dir", str(tmp_path / "run"), "--token", TOKEN, "--workers", "2")
    assert code == 0, output
    assert [(s.token, s.workers, s.run_dir) for s in ran] == [(TOKEN, 2, str(tmp_path / "run"))]
    assert (tmp_path / "run").is_dir()


def test_start_when_secrets_are_on_the_command_line_warns_of_each_never_showing_it(
    tmp_path: Path, ran: list[Settings]
) -> None:
    args = ["--run-dir", str(tmp_path), "--token", TOKEN, "--twitch-accounts", "bot:oauth:abcdefgh"]
    code, output = invoke(*args, "--coordinator", "redis://:s3cret@127.0.0.1:1/0")
    assert code == 0, output
    warned = [line.partition("shardrunner.cli: ")[2] for line in output.splitlines() if " WARNING " in line]
    assert [w.split(" ")[0] for w in warned] == ["--token", "--twitch-accounts", "--coordinator"]
    assert "give it in SHARDRUNNER_TOKEN or the config file instead" in warned[0]
    assert TOKEN not in output
    assert "abcdefgh" not in output
    assert "s3cret" not in output
    env = {"SHARDRUNNER_TOKEN": TOKEN}
    code, output = invoke("--run-dir", str(tmp_path), "--coordinator", "redis://127.0.0.1:1/0", env=env)
    assert code == 0, output
    assert " WARNING " not in output, "from the environment, or no password: nothing to say"


def test_start_when_a_file_holding_secrets_is_open_to_others_warns_naming_it(
    tmp_path: Path, ran: list[Settings]
) -> None:
    config, accounts = tmp_path / "shardrunner.toml", tmp_path / "accounts.txt"
    config.write_text(f'[discord]\ntoken = "{TOKEN}"\n')
    accounts.write_text("bot:abcdefgh\n")
    for path in (config, accounts):
        path.chmod(0o644)
    args = [
        "--run-dir",
        str(tmp_path / "run"),
        "--config",
        str(config),
        "--twitch-accounts-file",
        str(accounts),
    ]
    code, output = invoke(*args)
    assert code == 0, output
    warned = [line.partition("shardrunner.cli: ")[2] for line in output.splitlines() if " WARNING " in line]
    assert warned == [
        f"{accounts} holds the Twitch accounts and other users can read it (mode 644): `chmod 600` it",
        f"{config} holds token and other users can read it (mode 644): `chmod 600` it",
    ]
    for path in (config, accounts):
        path.chmod(0o600)
    code, output = invoke(*args)
    assert code == 0, output
    assert " WARNING " not in output


def test_start_when_the_supervisor_fails_says_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(start, "_run_supervisor", lambda settings: (1, "Discord refused the token"))
    code, output = invoke("--run-dir", str(tmp_path), env={"SHARDRUNNER_TOKEN": TOKEN})
    assert (code, output) == (1, "Error: Discord refused the token\n")


@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_start_when_run_dir_is_unusable_fails_with_one_sentence(
    tmp_path: Path, ran: list[Settings], where: str
) -> None:
    (tmp_path / "file").write_text("")
    path = {"file": tmp_path / "file", "under-file": tmp_path / "file" / "run", "unwritable": Path("/proc")}[
        where
    ]
    code, output = invoke("--run-dir", str(path), "--sim")
    assert code == 1
    assert output.startswith("Error: ")
    assert output.count("\n") == 1
    assert str(path) in output
    assert ran == []


@pytest.fixture
def running_cluster(tmp_path: Path) -> Iterator[int]:
    """A live process whose command line says shardrunner, named by the run dir's pid file."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "shardrunner"])
    RunDir(tmp_path).pid_file.write_text(f"{proc.pid}\n")
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(10)


def test_start_when_sim_and_a_cluster_runs_refuses_touching_nothing(
    tmp_path: Path, ran: list[Settings], running_cluster: int
) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    code, output = invoke("--run-dir", str(tmp_path), "--sim")
    assert code == 1
    assert f"a cluster is already running in {tmp_path} (pid {running_cluster})" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert ran == []


def _runs_the_simulator(proc: psutil.Process) -> bool:
    try:
        return proc.cmdline()[1:5] == ["-m", "shardrunner", "sim", "discord"]
    except psutil.Error:
        return False


def test_start_when_sim_runs_the_supervisor_against_the_child_and_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Settings, int]] = []

    def fake(settings: Settings) -> tuple[int, str | None]:
        import urllib.request

        # The child serves while the supervisor runs: /gateway/bot answers with the token given.
        req = urllib.request.Request(
            f"{settings.api_url}/gateway/bot", headers={"Authorization": f"Bot {settings.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
        # This test process may have other children (processes of earlier tests still ending):
        # the simulator child is the one running `shardrunner sim discord`.
        (sim_child,) = [p for p in psutil.Process().children() if _runs_the_simulator(p)]
        seen.append((settings, sim_child.pid))
        return 0, None

    monkeypatch.setattr(start, "_run_supervisor", fake)
    code, output = invoke("--run-dir", str(tmp_path), "--sim", "--identify-window", "0.1")
    assert code == 0, output
    ((settings, child),) = seen
    assert settings.api_url.startswith("http://127.0.0.1:")
    assert settings.api_url.endswith("/api/v10")
    assert settings.token == make_token(DEFAULT_BOT_ID)
    assert settings.source("api_url") == "the built-in simulator"
    assert settings.sim is True
    deadline = time.monotonic() + 10
    while psutil.pid_exists(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not psutil.pid_exists(child), "the simulator child outlived the supervisor"
