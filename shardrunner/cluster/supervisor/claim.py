"""Taking a run directory for one cluster, and giving it back.

A start that finds another living cluster in the run directory is refused and touches nothing of
it (its sockets, pid file and bus sockets stay). A start that takes it removes the bus sockets a
gone cluster left behind; a cluster that stops removes its own sockets and pid file.
"""

from __future__ import annotations

import contextlib
import os

import psutil

from shardrunner.rundir import RunDir


class RunDirTaken(RuntimeError):
    """Another cluster runs in the run directory, or it cannot be used; one sentence for the user."""


def running_cluster(run_dir: RunDir) -> int | None:
    """The pid of another living shardrunner supervisor that owns the run directory, if any."""
    other = run_dir.supervisor_pid()
    if other is None or other == os.getpid():
        return None
    try:
        cmdline = " ".join(psutil.Process(other).cmdline())
    except psutil.Error:
        return None  # gone meanwhile, or not ours to look at: a stale pid file
    return other if "shardrunner" in cmdline else None


def claim(run_dir: RunDir) -> None:
    """Make the run directory this process's, or raise :class:`RunDirTaken` having changed nothing."""
    try:
        run_dir.path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise RunDirTaken(f"cannot create the run directory {run_dir.path}: {exc.strerror}") from None
    if not run_dir.path.is_dir():
        raise RunDirTaken(f"the run directory {run_dir.path} is not a directory")
    owner = run_dir.path.stat().st_uid
    if owner != os.geteuid():
        # Its owner could replace the sockets, the logs and the state file (a /tmp name made first).
        raise RunDirTaken(
            f"the run directory {run_dir.path} belongs to another user (uid {owner}), who could replace "
            "what is in it: pass a --run-dir of your own"
        )
    # Its ipc sockets (control, workers, buses) are reachable by whoever may enter it: this user only.
    with contextlib.suppress(OSError):
        if run_dir.path.stat().st_mode & 0o077:
            run_dir.path.chmod(0o700)
    other = running_cluster(run_dir)
    if other is not None:
        raise RunDirTaken(
            f"a cluster is already running in {run_dir.path} (pid {other}): "
            "stop it with `shardrunner stop` or pass another --run-dir"
        )
    try:
        run_dir.pid_file.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        raise RunDirTaken(f"cannot write to the run directory {run_dir.path}: {exc.strerror}") from None
    for stale in run_dir.bus_socks():  # left by the workers of a cluster that is gone
        with contextlib.suppress(OSError):
            stale.unlink()


def release(run_dir: RunDir) -> None:
    """Remove this cluster's sockets and pid file (only call it after :func:`claim` succeeded)."""
    with contextlib.suppress(OSError):
        if run_dir.pid_file.read_text().strip() == str(os.getpid()):
            run_dir.pid_file.unlink()
    for path in (run_dir.workers_sock, run_dir.control_sock, *run_dir.bus_socks()):
        with contextlib.suppress(OSError):
            path.unlink()
