"""The run directory a supervisor claims is this user's only: its ipc sockets (control, workers,
buses) cannot be reached by others, whatever mode the directory had."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import zmq

from shardrunner.cluster.supervisor.claim import RunDirTaken, claim, release
from shardrunner.rundir import RunDir


@pytest.mark.parametrize("before", [None, 0o755, 0o777])
def test_claim_when_the_run_dir_is_new_or_open_leaves_it_mode_0700(
    tmp_path: Path, before: int | None
) -> None:
    run_dir = RunDir(tmp_path / "run")
    if before is not None:
        run_dir.path.mkdir()
        run_dir.path.chmod(before)
    claim(run_dir)
    try:
        assert stat.S_IMODE(run_dir.path.stat().st_mode) == 0o700
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.bind(run_dir.control_endpoint)
        try:
            # Whatever mode the socket file has, nobody else may enter the directory to reach it.
            assert stat.S_ISSOCK(run_dir.control_sock.stat().st_mode)
            assert run_dir.path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO) == 0
        finally:
            sock.close(linger=0)
            ctx.term()
    finally:
        release(run_dir)


def test_claim_when_the_run_dir_belongs_to_another_user_refuses_touching_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir(mode=0o777)
    run_dir.path.chmod(0o777)
    owner = run_dir.path.stat().st_uid
    monkeypatch.setattr("os.geteuid", lambda: owner + 1)  # as another user would see it
    with pytest.raises(RunDirTaken) as info:
        claim(run_dir)
    assert str(info.value) == (
        f"the run directory {run_dir.path} belongs to another user (uid {owner}), who could replace "
        "what is in it: pass a --run-dir of your own"
    )
    assert stat.S_IMODE(run_dir.path.stat().st_mode) == 0o777
    assert not run_dir.pid_file.exists()
