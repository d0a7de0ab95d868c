"""Adapters that run existing bots on shardrunner's stream: ``shardrunner.adapters.discordpy``
(discord.py, the ``discordpy`` extra). Importing this package imports no bot library."""
