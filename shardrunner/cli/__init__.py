"""The ``shardrunner`` command line: a thin layer over settings, cluster, simulator and client.

Each command lives in its own module (``start``, ``control``: status/reload/stop, ``reshard``,
``channels``, ``tail``, ``sim``, ``keys``, ``hosts``); heavy imports (the supervisor, the client, the
simulator's server, Redis) happen inside the commands, so that ``--help`` stays fast.
"""

from __future__ import annotations

import click

from shardrunner import __version__

# Imported under other names, so that ``shardrunner.cli.start`` (and the others) stay the modules.
from shardrunner.cli.channels import channels as channels_group
from shardrunner.cli.control import reload as reload_command
from shardrunner.cli.control import status as status_command
from shardrunner.cli.control import stop as stop_command
from shardrunner.cli.hosts import hosts as hosts_group
from shardrunner.cli.keys import keys as keys_group
from shardrunner.cli.reshard import reshard as reshard_command
from shardrunner.cli.sim import sim as sim_group
from shardrunner.cli.start import start as start_command
from shardrunner.cli.tail import tail as tail_command


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="shardrunner")
def main() -> None:
    """shardrunner keeps a chat bot's gateway connections (Discord shards, Twitch chat connections)
    alive in their own processes and routes every event to the bot over ZeroMQ, so the bot can
    restart and deploy without reconnecting or losing events.

    Run `shardrunner COMMAND --help` for the options of each command.
    """


for _command in (
    sim_group,
    start_command,
    status_command,
    reload_command,
    reshard_command,
    channels_group,
    stop_command,
    tail_command,
    keys_group,
    hosts_group,
):
    main.add_command(_command)

__all__ = ["main"]
