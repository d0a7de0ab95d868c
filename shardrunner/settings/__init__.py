"""The one settings registry of shardrunner: the cluster, the bus, Discord and the simulator.

Sections (:mod:`.sections`, :mod:`.sim`) declare the settings; :mod:`.registry` says what a setting
is; :mod:`.toml` reads config files; :mod:`.load` resolves command line > environment > file >
default; :mod:`.values` is the typed :class:`Settings` of ``shardrunner start``; :mod:`.click`
(imported by the CLI only) builds the options. This package imports ``shardrunner.protocol`` and
``shardrunner.rundir`` only.
"""

from __future__ import annotations

from shardrunner.settings.discord import DISCORD
from shardrunner.settings.load import ALL_SECTIONS, CONFIG_ENV, Resolved, resolve
from shardrunner.settings.registry import ENV_PREFIX, MASK, Section, Setting, SettingsError
from shardrunner.settings.sections import BUS, CLUSTER, START_SECTIONS
from shardrunner.settings.sim import SIM_DISCORD, SIM_DISCORD_SECTIONS
from shardrunner.settings.sim_twitch import SIM_TWITCH, SIM_TWITCH_SECTIONS
from shardrunner.settings.values import SETTINGS, LogLevel, Progress, Settings, load_settings

__all__ = [
    "ALL_SECTIONS",
    "BUS",
    "CLUSTER",
    "CONFIG_ENV",
    "DISCORD",
    "ENV_PREFIX",
    "MASK",
    "SETTINGS",
    "SIM_DISCORD",
    "SIM_DISCORD_SECTIONS",
    "SIM_TWITCH",
    "SIM_TWITCH_SECTIONS",
    "START_SECTIONS",
    "LogLevel",
    "Progress",
    "Resolved",
    "Section",
    "Setting",
    "Settings",
    "SettingsError",
    "load_settings",
    "resolve",
]
