"""Config files: errors that name the file and the key, and the example config."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from shardrunner.settings import SETTINGS, START_SECTIONS, load_settings
from tests.settings.helpers import EXAMPLE, SIM, TOKEN, load_error, write_config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sim = 1",
            "invalid setting sim: must be one of 1, true, yes, on, 0, false, no, off (got 1 from {where})",
        ),
        (
            'sim = "perhaps"',
            "invalid setting sim: must be one of 1, true, yes, on, 0, false, no, off "
            "(got perhaps from {where})",
        ),
        (
            "sim = true\nworkers = 1.5",
            "invalid setting workers: must be a whole number (got 1.5 from {where})",
        ),
        (
            "sim = true\nworkers = true",
            "invalid setting workers: must be a whole number (got true from {where})",
        ),
        (
            "sim = true\nhung-after = [1]",
            "invalid setting hung_after: must be a number (got [1] from {where})",
        ),
        ("sim = true\napi-url = 5", "invalid setting api_url: must be a string (got 5 from {where})"),
    ],
)
def test_load_settings_when_toml_value_is_invalid_names_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text + "\n")
    assert load_error({}, {}, path) == message.format(where=f"config file {path}")


def test_load_settings_when_toml_key_is_unknown_names_key_and_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nporst = 8900\n")
    assert load_error({}, {}, path) == f"unknown setting 'porst' in config file {path}"


def test_load_settings_when_toml_key_is_misspelt_suggests_the_setting(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nworkrs = 2\n")
    assert (
        load_error({}, {}, path)
        == f"unknown setting 'workrs' in config file {path} (did you mean 'workers'?)"
    )


def test_load_settings_when_toml_gives_a_setting_twice_raises(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'sim = true\nrun-dir = "/a"\nrun_dir = "/b"\n')
    assert load_error({}, {}, path) == (
        f"setting run_dir is given twice in config file {path} (as 'run-dir' and 'run_dir')"
    )


def test_load_settings_when_toml_is_invalid_raises_one_sentence(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sim = true\nworkers = \n")
    message = load_error({}, {}, path)
    assert message.startswith(f"config file {path} is not valid TOML: ")
    assert "line 2" in message


def test_load_settings_when_toml_is_not_utf8_raises_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'log-level = "d\xe9bug"\n')
    assert load_error({}, {}, str(path)) == f"config file {path} is not valid TOML: it is not UTF-8 text"


def test_load_settings_when_config_file_is_missing_raises_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert load_error({}, {}, str(path)) == f"cannot read config file {path}: No such file or directory"


def test_load_settings_when_env_names_a_missing_config_says_which_variable(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    assert load_error({}, {"SHARDRUNNER_CONFIG": str(path)}) == (
        f"cannot read config file {path} (named by environment variable SHARDRUNNER_CONFIG): "
        "No such file or directory"
    )


# -- the example config -------------------------------------------------------------------------


def test_example_config_when_loaded_as_is_runs_on_the_simulator() -> None:
    settings = load_settings({}, {}, str(EXAMPLE))
    assert settings.sim is True
    assert settings.source("sim") == f"config file {EXAMPLE}"


def test_example_config_when_token_given_in_env_loads() -> None:
    settings = load_settings({"sim": False}, {"SHARDRUNNER_TOKEN": TOKEN}, str(EXAMPLE))
    assert settings.token == TOKEN


def test_example_config_when_read_mentions_every_setting() -> None:
    text = EXAMPLE.read_text()
    for setting in SETTINGS:
        key = setting.name.replace("_", "-")
        assert re.search(rf"^#? ?{re.escape(key)} = ", text, re.MULTILINE), f"{key} missing from {EXAMPLE}"


def test_example_config_when_loaded_sets_nothing_but_sim_and_metrics_away_from_the_default() -> None:
    example = load_settings({}, {}, str(EXAMPLE))
    defaults = load_settings({**SIM, "metrics_port": 9464}, {}, None)  # the example turns metrics on
    assert dataclasses.replace(example, _sources={}) == dataclasses.replace(defaults, _sources={})


# -- sections -----------------------------------------------------------------------------------


def test_load_settings_when_keys_are_in_their_sections_reads_them(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, '[cluster]\nsim = true\nworkers = 2\n[discord]\nshards = 6\n[bus]\ngroups = ["a", "b"]\n'
    )
    settings = load_settings({}, {}, path)
    assert (settings.sim, settings.workers, settings.shards, settings.groups) == (True, 2, 6, "a,b")
    assert settings.source("shards") == f"config file {path}"


def test_load_settings_when_flat_and_sectioned_keys_mix_reads_both(tmp_path: Path) -> None:
    path = write_config(tmp_path, "workers = 2\n[cluster]\nsim = true\n")
    settings = load_settings({}, {}, path)
    assert (settings.sim, settings.workers) == (True, 2)


def test_load_settings_when_a_key_is_in_the_wrong_section_names_the_right_one(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[cluster]\nsim = true\nshards = 4\n")
    assert load_error({}, {}, path) == (
        f"setting shards belongs in section [discord] of config file {path}, not in [cluster]"
    )


def test_load_settings_when_a_key_is_given_flat_and_in_its_section_raises(tmp_path: Path) -> None:
    path = write_config(tmp_path, "workers = 2\n[cluster]\nsim = true\nworkers = 3\n")
    assert load_error({}, {}, path) == (
        f"setting workers is given twice in config file {path} (as 'workers' and 'cluster.workers')"
    )


def test_load_settings_when_a_section_key_is_misspelt_suggests_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[cluster]\nsim = true\nwrokers = 3\n")
    assert load_error({}, {}, path) == (
        f"unknown setting 'wrokers' in section [cluster] of config file {path} (did you mean 'workers'?)"
    )


@pytest.mark.parametrize(
    ("text", "section", "hint"),
    [
        ("[dicsord]\nshards = 2\n", "dicsord", "discord"),
        ("[sim.discrod]\nport = 1\n", "sim.discrod", "sim.discord"),
    ],
)
def test_load_settings_when_a_section_is_unknown_suggests_one(
    tmp_path: Path, text: str, section: str, hint: str
) -> None:
    path = write_config(tmp_path, "[cluster]\nsim = true\n" + text)
    assert load_error({}, {}, path) == (
        f"unknown section [{section}] in config file {path} (did you mean {hint!r}?)"
    )


def test_load_settings_when_file_has_the_simulators_section_skips_it(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[cluster]\nsim = true\n[sim.discord]\nport = 0\nguilds-per-shard = 3\n")
    assert load_settings({}, {}, path).sim is True


def test_example_config_when_parsed_puts_every_setting_in_its_section() -> None:
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text())
    text = EXAMPLE.read_text()
    for section in START_SECTIONS:
        assert section.name in data
        body = text.split(f"[{section.name}]\n", 1)[1].split("\n[", 1)[0]
        for setting in section.settings:
            assert re.search(rf"^#? ?{re.escape(setting.key)} = ", body, re.MULTILINE), (
                f"{setting.key} is not in [{section.name}] of {EXAMPLE}"
            )
