"""``python -m shardrunner.cluster.worker``: the module name the supervisor starts workers by."""

from __future__ import annotations

from shardrunner.cluster.worker.process import main

main()
