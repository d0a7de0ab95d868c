"""Adapters: bots written for a Discord library run on shardrunner's stream instead of their own
gateway connections: ``shardrunner.adapters.discordpy`` (discord.py) and
``shardrunner.adapters.hikari`` (hikari); see docs/adapters.md.

Each adapter imports its library, which is an optional extra (``pip install 'shardrunner[discordpy]'``,
``shardrunner[hikari]``): importing ``shardrunner.adapters`` itself loads none of them.
"""
