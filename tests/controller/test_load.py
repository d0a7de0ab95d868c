"""Loading the controller a spec names: by module or by file, and one sentence for each way the
spec can be wrong."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from shardrunner.controller import Controller, ControllerError, load_controller
from shardrunner.controller.load import absolute_spec, split_spec

GOOD = """
from shardrunner.controller import Controller

class Ops(Controller):
    def accept(self, platform, name, key):
        return name != "TYPING_START"

class Broken(Controller):
    def __init__(self):
        raise RuntimeError("no config file")

class Slow(Controller):
    hook_timeout = 0

class NotOne:
    pass

thing = 3
"""


@pytest.fixture
def pkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A bot's package ``mybot`` with ``mybot/ops.py``, in the working directory."""
    (tmp_path / "mybot").mkdir()
    (tmp_path / "mybot" / "__init__.py").write_text("")
    (tmp_path / "mybot" / "ops.py").write_text(GOOD)
    (tmp_path / "mybot" / "bad.py").write_text("import no_such_dependency_xyz\n")
    (tmp_path / "mybot" / "boom.py").write_text("raise ValueError('half-written')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    yield tmp_path
    for name in [m for m in sys.modules if m == "mybot" or m.startswith("mybot.")]:
        del sys.modules[name]


def test_load_when_the_spec_names_a_module_class_makes_one_instance(pkg: Path) -> None:
    controller = load_controller("mybot.ops:Ops")
    assert isinstance(controller, Controller)
    assert type(controller).__name__ == "Ops"
    assert controller.accept("discord", "TYPING_START", None) is False


def test_load_when_the_spec_names_a_file_loads_it_relative_to_the_working_directory(pkg: Path) -> None:
    controller = load_controller("mybot/ops.py:Ops")
    assert type(controller).__name__ == "Ops"
    assert type(controller).__module__.startswith("shardrunner_controller_ops_")
    assert absolute_spec("mybot/ops.py:Ops") == f"{pkg / 'mybot' / 'ops.py'}:Ops"
    assert absolute_spec("mybot.ops:Ops") == "mybot.ops:Ops"


@pytest.mark.parametrize(
    ("spec", "sentence"),
    [
        ("mybot.ops", "controller 'mybot.ops' must be module:Class or path/file.py:Class"),
        (
            "nosuchpkg_xyz.ops:Ops",
            "controller nosuchpkg_xyz.ops: no module named nosuchpkg_xyz (is it installed",
        ),
        ("mybot.nosuch:Ops", "controller mybot.nosuch: no module named mybot.nosuch"),
        ("mybot.bad:Ops", "controller mybot.bad: importing it raised ModuleNotFoundError: No module named"),
        ("mybot.boom:Ops", "controller mybot.boom: importing it raised ValueError: half-written"),
        ("mybot.ops:Missing", "controller mybot.ops:Missing: mybot.ops has no attribute Missing"),
        ("mybot.ops:NotOne", "NotOne is not a subclass of shardrunner.controller.Controller"),
        ("mybot.ops:thing", "thing is not a subclass of shardrunner.controller.Controller"),
        ("mybot.ops:Broken", "its constructor raised RuntimeError: no config file"),
        ("mybot.ops:Slow", "hook_timeout must be a number of seconds above 0, not 0"),
        ("mybot/nofile.py:Ops", "controller mybot/nofile.py: no such file (the path is relative to"),
        ("mybot/boom.py:Ops", "controller mybot/boom.py: loading it raised ValueError: half-written"),
    ],
)
def test_load_when_the_spec_is_wrong_says_why_in_one_sentence(pkg: Path, spec: str, sentence: str) -> None:
    with pytest.raises(ControllerError) as caught:
        load_controller(spec)
    message = str(caught.value)
    assert sentence in message
    assert "\n" not in message
    assert "Traceback" not in message


def test_split_spec_when_shaped_wrong_raises_value_error() -> None:
    assert split_spec(" a.b:C ") == ("a.b", "C")
    for bad in ("", "a.b", ":C", "a.b:", "a.b:not-a-name"):
        with pytest.raises(ValueError, match="module:Class"):
            split_spec(bad)


def test_load_when_the_file_is_loaded_twice_from_two_places_keeps_them_apart(
    pkg: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "ops.py").write_text(textwrap.dedent(GOOD).replace("TYPING_START", "PRESENCE_UPDATE"))
    first = load_controller("mybot/ops.py:Ops")
    second = load_controller("other/ops.py:Ops")
    assert type(first) is not type(second)
    assert first.accept("discord", "PRESENCE_UPDATE", None) is True
    assert second.accept("discord", "PRESENCE_UPDATE", None) is False
