"""Stands in for the worker module in the spawner's test: says what it was given (its arguments,
the secret environment variables it has), then exits 3."""

from __future__ import annotations

import os
import sys

from shardrunner.cluster.supervisor.spawner import SECRET_ENV

given = sorted(SECRET_ENV & set(os.environ))
print(" ".join(sys.argv[1:]), f"secrets {','.join(given)}" if given else "no-token", flush=True)
sys.exit(3)
