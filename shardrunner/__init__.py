"""shardrunner: gateway connections kept alive outside the bot, events routed to it over ZeroMQ."""

from __future__ import annotations

__version__ = "0.1.0"
