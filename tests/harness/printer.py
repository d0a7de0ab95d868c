"""A stand-in bot program for tests/harness/test_bots.py: prints records as a bot does, then waits."""

from __future__ import annotations

import sys
import time

from harness.lines import emit, gap_record
from shardrunner.client.events import Gap
from shardrunner.protocol.keys import ConnKey

if __name__ == "__main__":
    assert sys.argv[1] == "--run-dir"
    print("not json", flush=True)
    emit({"gap": gap_record(Gap(ConnKey("discord", 0, 1, 4), "s1", 3, [(5, 7)]))})
    emit({"ready": True, "t": 12.5})
    emit({"event": sys.argv[3]})
    time.sleep(30)
