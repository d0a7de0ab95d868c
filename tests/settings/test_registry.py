"""The registry: what a setting and a section are, and the names derived from them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from shardrunner.settings import (
    ALL_SECTIONS,
    DISCORD,
    SETTINGS,
    SIM_DISCORD,
    START_SECTIONS,
    Section,
    Setting,
    Settings,
)
from shardrunner.settings.registry import settings_of, suggestion, to_int


def test_settings_when_compared_with_registry_have_one_attribute_per_setting_in_order() -> None:
    attributes = [f.name for f in dataclasses.fields(Settings) if not f.name.startswith("_")]
    assert attributes == [s.name for s in SETTINGS]


def test_setting_when_named_derives_env_var_and_option() -> None:
    setting = next(s for s in SETTINGS if s.name == "run_dir")
    assert setting.env_var == "SHARDRUNNER_RUN_DIR"
    assert setting.option == "--run-dir"


def test_setting_when_name_is_not_snake_case_raises() -> None:
    with pytest.raises(ValueError, match="snake_case"):
        Setting("RunDir", str, "x", "help")


def test_setting_when_default_is_computed_without_default_text_raises() -> None:
    with pytest.raises(ValueError, match="default_text"):
        Setting("thing", str, lambda: "x", "help")


def test_section_when_declared_gives_its_settings_its_env_prefix() -> None:
    section = Section("sim.test", (Setting("port", to_int, 1, "port"),), env_prefix="SHARDRUNNER_SIM_")
    assert section.get("port").env_var == "SHARDRUNNER_SIM_PORT"
    assert section.table == ("sim", "test")


def test_section_when_a_setting_is_declared_twice_raises() -> None:
    with pytest.raises(ValueError, match="twice"):
        Section("x", (Setting("a", to_int, 1, "a"), Setting("a", to_int, 2, "a")))


def test_settings_of_when_two_sections_share_a_name_raises() -> None:
    one = Section("one", (Setting("a", to_int, 1, "a"),))
    two = Section("two", (Setting("a", to_int, 1, "a"),))
    with pytest.raises(ValueError, match="in sections one and two"):
        settings_of([one, two])


def test_start_sections_when_listed_are_cluster_discord_twitch_bus_hosts_with_unique_names() -> None:
    assert [s.name for s in START_SECTIONS] == ["cluster", "discord", "twitch", "bus", "hosts"]
    assert list(settings_of(START_SECTIONS)) == [s.name for s in SETTINGS]
    assert DISCORD.get("token").secret
    assert START_SECTIONS[-1].get("coordinator").secret


def test_sim_section_when_read_uses_the_sim_prefix() -> None:
    assert SIM_DISCORD.get("token").env_var == "SHARDRUNNER_SIM_TOKEN"
    assert SIM_DISCORD.get("port").option == "--port"


def test_suggestion_when_a_name_is_close_names_it_with_dashes() -> None:
    assert suggestion("run_dri", ["run_dir", "workers"]) == " (did you mean 'run-dir'?)"
    assert suggestion("zzz", ["run_dir"]) == ""


@pytest.mark.parametrize("value", [None, "abc", 1])
def test_show_when_setting_is_secret_masks_any_value_but_none(value: object) -> None:
    secret = DISCORD.get("token")
    assert secret.show(value) == ("none" if value is None else "***")


def test_registry_when_imported_does_not_load_click() -> None:
    code = "import sys, shardrunner.settings; print('click' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_all_sections_when_listed_give_every_setting_its_own_env_var() -> None:
    env_vars = [s.env_var for section in ALL_SECTIONS for s in section.settings]
    assert len(env_vars) == len(set(env_vars))
    assert "SHARDRUNNER_CONFIG" not in env_vars
