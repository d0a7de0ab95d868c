"""The README's commands stay true: CI runs exactly the README's test command."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_test_command() -> str:
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- test-command -->", 1)[1]
    return block.split("```sh\n", 1)[1].split("\n```", 1)[0].strip()


def test_ci_run_when_read_runs_exactly_the_readme_test_command() -> None:
    command = readme_test_command()
    assert "pytest" in command
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert command in lines


def test_readme_when_read_runs_the_cluster_on_the_simulator() -> None:
    text = (ROOT / "README.md").read_text()
    main_job = (
        "{ .venv/bin/shardrunner start --sim --groups example-bot & .venv/bin/python examples/bot.py; }"
    )
    assert f".venv/bin/pip install -e . && {main_job}" in text
    assert ".venv/bin/shardrunner sim discord" in text


def test_readme_test_command_when_read_installs_redis_server_first() -> None:
    assert readme_test_command().startswith(".ci/redis && ")
    script = ROOT / ".ci" / "redis"
    assert script.stat().st_mode & 0o111, ".ci/redis is executable"
    assert "apt-get install -y" in script.read_text()
