"""``shardrunner keys``: the key files, their modes, and the refusal to overwrite them."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from zmq.auth.certs import load_certificate
from zmq.utils import z85

from shardrunner.cli import main


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keys_when_server_and_bot_made_writes_pyzmq_certificates_with_private_modes(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    runner = CliRunner()
    server = runner.invoke(main, ["keys", "server", "--dir", str(keys)])
    bot = runner.invoke(main, ["keys", "bot", "alpha", "--dir", str(keys)])
    assert server.exit_code == 0, server.output
    assert bot.exit_code == 0, bot.output
    assert _mode(keys) == 0o700
    for name in ("server", "alpha"):
        assert _mode(keys / f"{name}.key_secret") == 0o600
        public, secret = load_certificate(keys / f"{name}.key_secret")
        assert secret is not None
        assert len(z85.decode(secret)) == 32
        assert load_certificate(keys / f"{name}.key") == (public, None)
        # The output names the files, never a key.
        assert public.decode() not in server.output + bot.output
        assert secret.decode() not in server.output + bot.output


def test_keys_when_files_exist_refuses_unless_forced(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["keys", "bot", "alpha", "--dir", str(tmp_path)]).exit_code == 0
    before = (tmp_path / "alpha.key_secret").read_bytes()
    again = runner.invoke(main, ["keys", "bot", "alpha", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exist: keep them, or pass --force" in again.output
    assert (tmp_path / "alpha.key_secret").read_bytes() == before
    forced = runner.invoke(main, ["keys", "bot", "alpha", "--dir", str(tmp_path), "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "alpha.key_secret").read_bytes() != before
    assert _mode(tmp_path / "alpha.key_secret") == 0o600


def test_keys_when_help_asked_says_which_file_goes_where() -> None:
    result = CliRunner().invoke(main, ["keys", "--help"])
    assert result.exit_code == 0
    for where in ("--curve-server-key", "--curve-clients", "SHARDRUNNER_SERVER_KEY", "SHARDRUNNER_BOT_KEY"):
        assert where in result.output


def test_keys_when_bot_name_is_not_a_name_refuses(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["keys", "bot", "../x", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "a bot's name must be" in result.output
