"""Stands in for the worker module in the spawner's test: says what it was given, then exits 3."""

from __future__ import annotations

import os
import sys

print(" ".join(sys.argv[1:]), "token" if "SHARDRUNNER_TOKEN" in os.environ else "no-token", flush=True)
sys.exit(3)
