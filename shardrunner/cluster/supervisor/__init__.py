"""The supervisor: spawns workers, gives each a consecutive range of connections, keeps them alive.

The package's parts: :mod:`.core` (the :class:`Supervisor`, wiring), :mod:`.reconcile` (the loop,
the only writer of worker state), :mod:`.model` (desired state, workers, their states),
:mod:`.spawner` (process handling), :mod:`.link` (the worker link), :mod:`.book` (the session
book), :mod:`.grants` (identify grants), :mod:`.status`, :mod:`.progress`, :mod:`.commands`
(control commands), :mod:`.claim` (the run directory), :mod:`.platforms` (discovery).
"""

from __future__ import annotations

from shardrunner.cluster.supervisor.core import ClusterError, Supervisor

__all__ = ["ClusterError", "Supervisor"]
