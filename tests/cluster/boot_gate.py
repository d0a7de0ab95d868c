"""Imported by workers in tests (SHARDRUNNER_WORKER_PRELOAD): fails while the marker file exists."""

from __future__ import annotations

import os
from pathlib import Path

marker = os.environ.get("SHARDRUNNER_TEST_BOOT_GATE")
if marker and Path(marker).exists():
    raise RuntimeError(f"boot refused for the test: {marker} exists")
