"""Adapters: bots written for a Discord library run on shardrunner's stream instead of their own
gateway connections (``shardrunner.adapters.hikari``; see docs/adapters.md).

Each adapter imports its library, which is an optional extra (``pip install shardrunner[hikari]``):
importing ``shardrunner.adapters`` itself loads none of them.
"""
