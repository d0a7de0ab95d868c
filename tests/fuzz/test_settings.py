"""Bad settings (docs/cluster.md, bad input): every registered setting, from the command line, the
environment and the config file, with values of any type and range.

The registry is iterated, so a setting added later is covered at once. A value either loads or is
refused with one line that names the setting (a secret's value never in it); no traceback. Garbage
config files (the corpus) are refused the same way.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shardrunner.settings.load import ALL_SECTIONS, resolve
from shardrunner.settings.registry import Section, Setting, SettingsError, display
from shardrunner.settings.sections import START_SECTIONS
from shardrunner.settings.sim import SIM_DISCORD_SECTIONS
from shardrunner.settings.sim_twitch import SIM_TWITCH_SECTIONS
from shardrunner.settings.values import load_settings
from tests.fuzz.corpus import corpus

#: Every setting with its command's sections and its own section.
EVERY: list[tuple[tuple[Section, ...], Section, Setting]] = [
    (command, section, setting)
    for command in (START_SECTIONS, SIM_DISCORD_SECTIONS, SIM_TWITCH_SECTIONS)
    for section in command
    for setting in section.settings
]
assert {s.name for _, _, s in EVERY} >= {s.name for sec in ALL_SECTIONS for s in sec.settings}

scalars = (
    st.text(max_size=12)
    | st.sampled_from(
        ["0", "-1", "1e309", "nan", "inf", "auto", "true", "0x10", " 7 ", "", "99999999999999999999"]
    )
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats()
    | st.booleans()
)
toml_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, max_size=2)
    ),
    max_leaves=5,
)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, str):
        # JSON's escapes are TOML's, but for characters past U+FFFF (written as they are here) and DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"


def _text(value: object) -> str:
    """A typed value as someone types it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "value", value))


@pytest.fixture(scope="module")
def where() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sr-settings-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _load(command: Sequence[Section], cli: dict[str, object], env: dict[str, str], config: str | None) -> Any:
    if command is START_SECTIONS:
        # --sim, so that no token is needed (unless the value under test is sim's own).
        return load_settings({"sim": True, **cli}, env, config)
    return resolve(command, cli, env, config, config_env=None)


def _check(error: SettingsError, setting: Setting, raw: object) -> None:
    message = str(error)
    assert "\n" not in message, message
    assert setting.name in message or error.setting not in (None, setting.name), message
    if setting.secret and isinstance(raw, str) and len(raw.strip()) >= 4:
        assert raw.strip() not in message, "a secret's value is never shown"


# Some 140 settings, three sources each: more examples than the profile's default (the ci profile: 150).
@settings(max_examples=max(300, settings.default.max_examples))
@given(
    which=st.sampled_from(range(len(EVERY))),
    source=st.sampled_from(["cli", "env", "toml"]),
    value=toml_values,
)
def test_settings_when_any_setting_gets_any_value_it_loads_or_says_why_in_one_line(
    where: Path, which: int, source: str, value: object
) -> None:
    command, section, setting = EVERY[which]
    cli: dict[str, object] = {}
    env: dict[str, str] = {}
    config = None
    raw: object = value
    if source == "cli" and setting.cli:
        # click hands over strings, or booleans for flags.
        raw = (value if isinstance(value, bool) else bool(value)) if setting.is_flag else display(value)
        cli[setting.name] = raw
    elif source == "env" or (not setting.cli and source == "cli"):
        raw = display(value) if not isinstance(value, str) else value
        if "\x00" in raw:
            return  # no environment variable holds a NUL
        env[setting.env_var] = raw
    else:
        path = where / "c.toml"
        path.write_text(f"[{section.name}]\n{setting.key} = {_toml(value)}\n")
        config = str(path)
    try:
        _load(command, cli, env, config)
    except SettingsError as exc:
        _check(exc, setting, raw)


@pytest.mark.parametrize(("command", "section", "setting"), EVERY, ids=[s.name for _, _, s in EVERY])
def test_settings_when_a_setting_is_given_its_default_as_text_it_round_trips(
    where: Path, command: tuple[Section, ...], section: Section, setting: Setting
) -> None:
    default = setting.default_value()
    if default is None:
        return  # unset by default: nothing to give
    typed = setting.convert(_text(default))
    assert typed == default, "as text (the command line, the environment)"
    path = where / "c.toml"
    path.write_text(f"[{section.name}]\n{setting.key} = {_toml(getattr(typed, 'value', typed))}\n")
    assert resolve(command, {}, {}, str(path), config_env=None).values[setting.name] == typed, "from TOML"


def test_settings_when_the_config_file_is_garbage_refuses_it_in_one_line(where: Path) -> None:
    for name, data in corpus("settings"):
        path = where / "garbage.toml"
        path.write_bytes(data)
        for command in (START_SECTIONS, SIM_DISCORD_SECTIONS, SIM_TWITCH_SECTIONS):
            with pytest.raises(SettingsError) as caught:
                _load(command, {}, {}, str(path))
            assert "\n" not in str(caught.value), (name, str(caught.value))
            assert str(path) in str(caught.value), name
