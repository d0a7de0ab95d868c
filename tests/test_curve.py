"""The endpoints' protection outside CURVE's handshake: an ipc socket file is the user's only, and
a secret key file open to others is said to be."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import zmq
from zmq.auth.certs import create_certificates

from shardrunner.curve import CurveKeys, restrict_ipc


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


def test_curve_keys_when_the_secret_file_is_open_to_others_warns_naming_the_file_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "shardrunner.curve")
    public, secret = create_certificates(tmp_path, "bot")
    os.chmod(secret, 0o600)
    keys = CurveKeys.load(public, secret)
    assert caplog.records == []
    os.chmod(secret, 0o644)
    CurveKeys.load(public, secret)
    assert [r.getMessage() for r in caplog.records] == [
        f"the secret CURVE key {secret} can be read by other users (mode 644): `chmod 600` it"
    ]
    assert keys.secret.decode() not in caplog.text
