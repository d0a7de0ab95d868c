"""The bus section's TCP settings: a TCP bind needs both CURVE settings; key paths, never keys."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner

from shardrunner.cli import main
from shardrunner.curve import NEED_CURVE
from shardrunner.settings import load_settings
from tests.settings.helpers import SIM, load_error


@pytest.mark.parametrize("cli", [{"bus_bind": "tcp://127.0.0.1"}, {"control_bind": "tcp://127.0.0.1:7300"}])
def test_settings_when_a_tcp_bind_has_no_keys_refuses_with_the_sentence(cli: dict[str, object]) -> None:
    assert load_error({**SIM, **cli}, {}) == NEED_CURVE


def test_settings_when_only_the_server_key_is_given_still_refuses(tmp_path: Path) -> None:
    env = {"SHARDRUNNER_BUS_BIND": "tcp://0.0.0.0", "SHARDRUNNER_CURVE_SERVER_KEY": str(tmp_path / "s")}
    assert load_error(SIM, env) == NEED_CURVE


def test_settings_when_a_bind_is_not_tcp_refuses() -> None:
    message = load_error({**SIM, "bus_bind": "ipc:///tmp/x"}, {})
    assert message.startswith("invalid setting bus_bind")
    assert "tcp://ADDRESS" in message


def test_settings_when_keys_are_given_keeps_their_absolute_paths(tmp_path: Path) -> None:
    secret = tmp_path / "server.key_secret"
    secret.write_text('curve\n    public-key = "x"\n    secret-key = "THE-SECRET-MATERIAL"\n')
    settings = load_settings(
        {
            **SIM,
            "bus_bind": "tcp://127.0.0.1",
            "curve_server_key": str(secret),
            "curve_clients": str(tmp_path),
        },
        {},
        None,
    )
    assert (settings.bus_bind, settings.curve_server_key, settings.curve_clients) == (
        "tcp://127.0.0.1",
        str(secret),
        str(tmp_path),
    )
    # Settings hold the path; the key material is read by the sockets only.
    assert "THE-SECRET-MATERIAL" not in repr(settings) + str(settings.redacted())


def test_start_when_a_tcp_bind_has_no_keys_refuses_in_one_sentence(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(
        main, ["start", "--sim", "--run-dir", str(tmp_path / "run"), "--bus-bind", "tcp://127.0.0.1"]
    )
    assert result.exit_code != 0
    assert NEED_CURVE in " ".join(result.output.split())
