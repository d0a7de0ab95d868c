"""Loading the controller the ``controller`` setting names, in the supervisor and in each worker.

The spec is ``module:Class`` (imported like any module; the working directory is on the path, as
for ``python -m``) or ``path/to/file.py:Class`` (a file, relative to the working directory). Every
way it can be wrong ends in :class:`ControllerError`, one sentence: no such module or file, no such
attribute, not a :class:`~shardrunner.controller.base.Controller` subclass, its constructor raised.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from shardrunner.controller.base import Controller


class ControllerError(RuntimeError):
    """The controller cannot be loaded; the message is one sentence for the user."""


def is_file_spec(target: str) -> bool:
    """A spec's target names a file (``x/y.py``), not a module (``x.y``)."""
    return target.endswith(".py") or "/" in target or os.sep in target


def split_spec(spec: str) -> tuple[str, str]:
    """``(target, attribute)`` of ``module:Class`` or ``path/file.py:Class`` (ValueError if neither)."""
    target, sep, attr = spec.strip().rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise ValueError("must be module:Class or path/file.py:Class")
    return target, attr


def absolute_spec(spec: str) -> str:
    """The spec with a file's path made absolute (the workers load the very file the supervisor did)."""
    target, attr = split_spec(spec)
    return f"{Path(target).resolve()}:{attr}" if is_file_spec(target) else spec


def _from_file(target: str) -> ModuleType:
    path = Path(target).resolve()
    if not path.is_file():
        raise ControllerError(f"controller {target}: no such file (the path is relative to {Path.cwd()})")
    # A name of its own per file, so that two files called ops.py do not collide in sys.modules.
    digest = hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()
    name = f"shardrunner_controller_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ControllerError(f"controller {target}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ControllerError(f"controller {target}: loading it raised {_said(exc)}") from None
    return module


def _from_module(target: str) -> ModuleType:
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)  # as `python -m` does: a bot's own package beside its config
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name and (target == exc.name or target.startswith(exc.name + ".")):
            raise ControllerError(
                f"controller {target}: no module named {exc.name} (is it installed, or in {cwd}?)"
            ) from None
        raise ControllerError(f"controller {target}: importing it raised {_said(exc)}") from None
    except Exception as exc:
        raise ControllerError(f"controller {target}: importing it raised {_said(exc)}") from None


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load_controller(spec: str) -> Controller:
    """The controller instance ``spec`` names (see the module); raises :class:`ControllerError`."""
    try:
        target, attr = split_spec(spec)
    except ValueError as exc:
        raise ControllerError(f"controller {spec!r} {exc}") from None
    module = _from_file(target) if is_file_spec(target) else _from_module(target)
    cls = getattr(module, attr, None)
    if cls is None:
        raise ControllerError(f"controller {spec}: {target} has no attribute {attr}")
    if not isinstance(cls, type) or not issubclass(cls, Controller):
        raise ControllerError(
            f"controller {spec}: {attr} is not a subclass of shardrunner.controller.Controller"
        )
    try:
        controller = cls()
    except Exception as exc:
        raise ControllerError(f"controller {spec}: its constructor raised {_said(exc)}") from None
    for name in ("hook_timeout", "stall_after"):
        value = getattr(controller, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise ControllerError(
                f"controller {spec}: {name} must be a number of seconds above 0, not {value!r}"
            )
    return controller
