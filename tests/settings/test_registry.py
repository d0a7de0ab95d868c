"""The registry: what a setting and a section are, and the names derived from them."""

from __future__ import annotations

import dataclasses

import pytest

from shardrunner.settings import SETTINGS, Setting, Settings




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


