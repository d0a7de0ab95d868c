"""What the commands share: running a coroutine, the ``--run-dir`` option and its checks, the
control call."""

from __future__ import annotations

import os
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from shardrunner.rundir import ENV_VAR, resolve_run_dir

_T = TypeVar("_T")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to the end on uvloop and return its result."""
    import uvloop

    result: _T = uvloop.run(coro)
    return result


run_dir_option = click.option(
    "--run-dir",
    default=None,
    help=f"Run directory of the cluster (default: the one `shardrunner start` uses; env {ENV_VAR}).",
)

_ELSEWHERE = f"pass another --run-dir (or set {ENV_VAR})"


def remote_options(command: Any) -> Any:
    """``--control``, ``--server-key``, ``--key``: ask a host elsewhere over TCP with CURVE."""
    for option in reversed(
        (
            click.option(
                "--control",
                default=None,
                envvar="SHARDRUNNER_CONTROL",
                help="TCP control endpoints of the cluster's hosts, comma separated (a host started with "
                "--control-bind), instead of the local run dir; env SHARDRUNNER_CONTROL.",
            ),
            click.option(
                "--server-key",
                default=None,
                envvar="SHARDRUNNER_SERVER_KEY",
                help="The cluster's public CURVE key file (server.key); env SHARDRUNNER_SERVER_KEY.",
            ),
            click.option(
                "--key",
                default=None,
                envvar="SHARDRUNNER_BOT_KEY",
                help="Your secret CURVE key file (NAME.key_secret), its public one authorised on the hosts; "
                "env SHARDRUNNER_BOT_KEY.",
            ),
        )
    ):
        command = option(command)
    return command


def remote_control(
    control: str, server_key: str | None, key: str | None, command: str, timeout: float
) -> Any:
    """One control command to the first of the TCP endpoints ``control`` that answers."""
    from shardrunner.control import NEED_KEYS, CommandError, call_any
    from shardrunner.curve import CurveError, CurveKeys

    if not server_key or not key:
        raise click.ClickException(NEED_KEYS)
    try:
        curve = CurveKeys.load(server_key, key)
        endpoints = [e.strip() for e in control.split(",") if e.strip()]
        return run(call_any(endpoints, command, curve=curve, timeout=timeout))[1]
    except (CommandError, CurveError) as exc:
        raise click.ClickException(str(exc)) from None


def check_run_dir(path: Path, *, create: bool) -> None:
    """Fail with one sentence (no traceback) when ``path`` cannot serve as a run directory.

    ``create`` (``start``): make it if missing, and make sure a file can be written in it. Otherwise
    (``status``, ``tail``...): a missing directory is left to the control call, which says that no
    cluster runs there; a file, or a directory that cannot be read, is refused here.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a parent that is a file (ENOTDIR), no permission to look (EACCES)...
        raise click.ClickException(
            f"cannot use {path} as the run directory: {_reason(exc)}; {_ELSEWHERE}"
        ) from None
    if mode is not None and not stat.S_ISDIR(mode):
        raise click.ClickException(
            f"the run directory {path} is a file, not a directory: remove it or {_ELSEWHERE}"
        )
    if not create:
        if mode is not None and not os.access(path, os.R_OK | os.X_OK):
            raise click.ClickException(
                f"cannot read the run directory {path}: permission denied; {_ELSEWHERE}"
            )
        return
    if mode is None:
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise click.ClickException(
                f"cannot create the run directory {path}: {_reason(exc)}; {_ELSEWHERE}"
            ) from None
    # Try a write rather than os.access: root passes access() where a read-only mount still refuses.
    probe = path / f".write-test-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as exc:
        raise click.ClickException(
            f"cannot write in the run directory {path}: {_reason(exc)}; {_ELSEWHERE}"
        ) from None


def _reason(exc: OSError | Exception) -> str:
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc).lower()


def run_dir_of(option: str | None) -> Path:
    """The run directory a command other than ``start`` uses, checked (see :func:`check_run_dir`)."""
    path = resolve_run_dir(option)
    check_run_dir(path, create=False)
    return path


def control(run_dir: Path, command: str, timeout: float, **fields: Any) -> Any:
    """One control command to the cluster in ``run_dir``; its error as a one-sentence failure."""
    import zmq

    from shardrunner.control import CommandError, call

    try:
        return run(call(run_dir, command, timeout=timeout, **fields))
    except CommandError as exc:
        raise click.ClickException(str(exc)) from None
    except (OSError, zmq.ZMQError) as exc:
        raise click.ClickException(f"cannot reach the cluster in {run_dir}: {_reason(exc)}") from None
