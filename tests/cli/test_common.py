"""The run directory checks every command makes: one sentence, never a traceback."""

from __future__ import annotations

import stat
from pathlib import Path

import click
import pytest

from shardrunner.cli.common import check_run_dir


def message(path: Path, *, create: bool) -> str:
    with pytest.raises(click.ClickException) as info:
        check_run_dir(path, create=create)
    text = info.value.message
    assert "\n" not in text
    return text


@pytest.mark.parametrize("create", [True, False])
def test_check_run_dir_when_it_is_a_file_says_so(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "run"
    path.write_text("")
    assert message(path, create=create) == (
        f"the run directory {path} is a file, not a directory: remove it or pass another --run-dir "
        "(or set SHARDRUNNER_RUN_DIR)"
    )


@pytest.mark.parametrize("create", [True, False])
def test_check_run_dir_when_a_parent_is_a_file_says_it_cannot_be_used(tmp_path: Path, create: bool) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "run"
    assert message(path, create=create) == (
        f"cannot use {path} as the run directory: not a directory; pass another --run-dir "
        "(or set SHARDRUNNER_RUN_DIR)"
    )


def test_check_run_dir_when_it_cannot_be_created_says_why() -> None:
    path = Path("/proc/shardrunner-test/run")
    assert message(path, create=True).startswith(f"cannot create the run directory {path}: ")


def test_check_run_dir_when_it_cannot_be_written_says_so() -> None:
    # /proc refuses new files even to root, so the test holds whoever runs it.
    assert message(Path("/proc"), create=True).startswith("cannot write in the run directory /proc: ")


def test_check_run_dir_when_missing_for_start_creates_it_private(tmp_path: Path) -> None:
    path = tmp_path / "a" / "run"
    check_run_dir(path, create=True)
    assert path.is_dir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert list(path.iterdir()) == []


def test_check_run_dir_when_missing_for_other_commands_leaves_it_missing(tmp_path: Path) -> None:
    path = tmp_path / "run"
    check_run_dir(path, create=False)
    assert not path.exists()
