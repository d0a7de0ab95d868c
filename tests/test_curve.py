"""The endpoints' protection outside CURVE's handshake: an ipc socket file is the user's only."""

from __future__ import annotations

import os
from pathlib import Path

import zmq

from shardrunner.curve import restrict_ipc


def test_restrict_ipc_when_the_umask_left_the_socket_open_makes_it_0600(tmp_path: Path) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    old = os.umask(0)
    try:
        sock.bind(f"ipc://{tmp_path}/x.sock")
    finally:
        os.umask(old)
    try:
        assert (tmp_path / "x.sock").stat().st_mode & 0o777 == 0o777, "the umask decides at bind"
        restrict_ipc(f"ipc://{tmp_path}/x.sock")
        assert (tmp_path / "x.sock").stat().st_mode & 0o777 == 0o600
        restrict_ipc("tcp://127.0.0.1:1")  # not a file: nothing to do
        restrict_ipc(f"ipc://{tmp_path}/gone.sock")  # never raises
    finally:
        sock.close(0)
        ctx.term()
