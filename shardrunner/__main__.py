from __future__ import annotations

from shardrunner.cli import main

main()
