"""The simulator's config built from the registry's ``sim.discord`` section."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from shardrunner.protocol.compression import Compression
from shardrunner.protocol.discord import PRIVILEGED_INTENT_BITS, PRIVILEGED_INTENTS
from shardrunner.settings import SIM_DISCORD, SettingsError
from shardrunner.sim.discord.config import (
    FAULT_KINDS,
    ConfigError,
    SimConfig,
    load_sim_config,
    parse_privileged,
)
from tests.conftest import TOKEN

EXAMPLE = Path(__file__).resolve().parents[3] / "configs" / "sim-discord.toml"


def test_sim_config_when_nothing_given_equals_the_dataclass_defaults() -> None:
    config, resolved = load_sim_config({}, {}, None)
    assert config == SimConfig()
    assert resolved.values["log_level"] == "info"


def test_sim_section_when_read_has_a_setting_for_every_field_but_renamed_ones() -> None:
    fields = set(SimConfig.__dataclass_fields__) - {"heartbeat_interval_ms"}
    names = {s.name for s in SIM_DISCORD.settings} - {"heartbeat_interval", "log_level"}
    assert names == fields
    assert SIM_DISCORD.get("faults").default == ",".join(FAULT_KINDS)


def test_sim_config_when_options_given_parses_the_simulators_formats() -> None:
    config, _ = load_sim_config(
        {
            "rate": "max",
            "mix": "MESSAGE_CREATE=2,TYPING_START",
            "faults": "drop,zombie",
            "privileged_intents": "members",
            "replay_compress": "zstd-stream,none",
            "heartbeat_interval": "1000",
            "record_sends": True,
        },
        {},
        None,
    )
    assert math.isinf(config.rate)
    assert config.mix == {"MESSAGE_CREATE": 2.0, "TYPING_START": 1.0}
    assert config.faults == ("drop", "zombie")
    assert config.privileged_intents == PRIVILEGED_INTENT_BITS["members"]
    assert config.replay_compress == (Compression.ZSTD_STREAM, Compression.NONE)
    assert (config.heartbeat_interval_ms, config.record_sends) == (1000, True)


def test_sim_config_when_env_gives_the_token_takes_it() -> None:
    config, resolved = load_sim_config({}, {"SHARDRUNNER_SIM_TOKEN": TOKEN}, None)
    assert config.token == TOKEN
    assert resolved.sources["token"] == "environment variable SHARDRUNNER_SIM_TOKEN"


def test_sim_config_when_a_number_is_out_of_range_names_the_setting_and_source() -> None:
    with pytest.raises(SettingsError) as info:
        load_sim_config({"port": "70000"}, {}, None)
    assert (
        str(info.value) == "invalid setting port: must be at most 65535 (got 70000 from command line --port)"
    )


def test_sim_config_when_values_conflict_names_the_options() -> None:
    with pytest.raises(ConfigError, match="--max-members must be at least --min-members"):
        load_sim_config({"min_members": "50", "max_members": "5"}, {}, None)


@pytest.mark.parametrize(
    ("text", "bits"), [("none", 0), ("members,presences,message_content", PRIVILEGED_INTENTS)]
)
def test_parse_privileged_when_names_are_known_gives_their_bits(text: str, bits: int) -> None:
    assert parse_privileged(text) == bits


def test_sim_config_when_the_example_file_is_read_uses_its_section(tmp_path: Path) -> None:
    config, resolved = load_sim_config({}, {}, str(EXAMPLE))
    assert (config.shards, config.guilds_per_shard, config.rate, config.fault_rate) == (4, 25, 50.0, 0.1)
    assert resolved.sources["shards"] == f"config file {EXAMPLE}"


def test_sim_config_when_file_is_named_by_env_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text("[sim.discord]\nshards = 3\n")
    config, _ = load_sim_config({}, {"SHARDRUNNER_SIM_CONFIG": str(path)}, None)
    assert config.shards == 3


def test_sim_config_when_file_has_cluster_sections_skips_them(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text("[cluster]\nworkers = 2\n[sim.discord]\nshards = 3\n")
    assert load_sim_config({}, {}, str(path))[0].shards == 3


def test_sim_config_when_resharding_options_given_parses_them() -> None:
    config, _ = load_sim_config(
        {
            "refuse_shard_counts": "8, 16",
            "refuse_code": "4011",
            "max_guilds_per_shard": "100",
            "recommend_per": "50",
            "shard_multiple": "16",
            "guild_growth": "2.5",
            "track_dispatches": True,
        },
        {},
        None,
    )
    assert config.refuse_shard_counts == (8, 16)
    assert (config.refuse_code, config.max_guilds_per_shard, config.recommend_per) == (4011, 100, 50)
    assert (config.shard_multiple, config.guild_growth, config.track_dispatches) == (16, 2.5, True)


def test_sim_config_when_resharding_options_from_a_file_take_a_toml_list(tmp_path: Path) -> None:
    path = tmp_path / "sim.toml"
    path.write_text("[sim.discord]\nrefuse-shard-counts = [4, 8]\ntrack-dispatches = true\n")
    config, _ = load_sim_config({}, {}, str(path))
    assert (config.refuse_shard_counts, config.track_dispatches) == ((4, 8), True)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"refuse_shard_counts": "8,x"}, "--refuse-shard-counts: 'x' is not a whole number"),
        ({"refuse_shard_counts": "0"}, "--refuse-shard-counts must be at least 1 each"),
        ({"refuse_code": "1005"}, "--refuse-code must be 0 (op 9) or a code a close frame can carry"),
    ],
)
def test_sim_config_when_refusal_options_invalid_names_them(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_sim_config(options, {}, None)
    assert str(info.value).startswith(message)
