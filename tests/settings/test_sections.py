"""The sections of ``shardrunner start``: the computed defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shardrunner.settings import load_settings
from shardrunner.settings.sections import available_cpus
from tests.settings.helpers import load_error

# -- the default worker count -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),
        ({"cpu.max": "50000 100000\n"}, 1),
        ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3),
    ],
)
def test_available_cpus_when_a_cgroup_quota_is_set_rounds_it_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    for name, text in files.items():
        path = tmp_path / "sys" / "fs" / "cgroup" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert available_cpus(tmp_path) == expected


def test_available_cpus_when_no_quota_counts_the_affinity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    (tmp_path / "sys" / "fs" / "cgroup").mkdir(parents=True)
    (tmp_path / "sys" / "fs" / "cgroup" / "cpu.max").write_text("max 100000\n")
    assert available_cpus(tmp_path) == 3


# -- the controller -------------------------------------------------------------------------------


def test_controller_when_set_from_the_environment_or_the_command_line_is_kept_as_given() -> None:
    assert load_settings({"sim": True}, {}, None).controller == ""
    env = load_settings({"sim": True}, {"SHARDRUNNER_CONTROLLER": "mybot.ops:Ops"}, None)
    assert (env.controller, env.source("controller")) == (
        "mybot.ops:Ops",
        "environment variable SHARDRUNNER_CONTROLLER",
    )
    assert load_settings({"sim": True, "controller": " ops.py:Ops "}, {}, None).controller == "ops.py:Ops"
    assert load_settings({"sim": True, "controller": "none"}, {}, None).controller == ""


def test_controller_when_not_shaped_module_class_fails_in_one_sentence() -> None:
    message = load_error({"sim": True, "controller": "mybot.ops"}, {})
    assert "controller" in message
    assert "must be module:Class or path/file.py:Class" in message
