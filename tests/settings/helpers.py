"""What the settings tests share: a valid token, config files, the one-sentence error check."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardrunner.settings import SettingsError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "shardrunner.toml"
#: A token of a bot token's shape (the first part is the base64 of a bot id).
TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhIjKl.secret-part"
SIM = {"sim": True}


def write_config(tmp_path: Path, text: str) -> str:
    """Write ``text`` to a TOML file under ``tmp_path`` and return its path."""
    path = tmp_path / "shardrunner.toml"
    path.write_text(text)
    return str(path)


def load_error(cli: dict[str, object], env: dict[str, str], config: str | None = None) -> str:
    """The message of the SettingsError that ``load_settings`` raises for these sources."""
    with pytest.raises(SettingsError) as info:
        load_settings(cli, env, config)
    message = str(info.value)
    assert "\n" not in message
    assert ". " not in message.replace("e.g. ", ""), f"more than one sentence: {message}"
    return message
