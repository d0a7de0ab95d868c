"""The ``shardrunner`` group: its commands, the entry point and ``python -m shardrunner``."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from shardrunner import __version__
from shardrunner.cli import main


def test_main_when_listed_has_every_command() -> None:
    assert sorted(main.commands) == [
        "channels",
        "hosts",
        "keys",
        "reload",
        "reshard",
        "sim",
        "start",
        "status",
        "stop",
        "tail",
    ]


def test_main_when_asked_for_the_version_prints_it() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert (result.exit_code, result.output) == (0, f"shardrunner, version {__version__}\n")


def test_python_m_shardrunner_when_run_is_the_same_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shardrunner", "--version"], capture_output=True, text=True, timeout=30
    )
    assert (out.returncode, out.stdout) == (0, f"shardrunner, version {__version__}\n")


def test_entry_point_when_read_from_pyproject_names_main() -> None:
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["shardrunner"] == "shardrunner.cli:main"
