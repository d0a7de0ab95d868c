"""The worker process's start-up: what it has imported by the time it freezes its start-up objects
out of the garbage collector (docs/performance.md, decision 9)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.test_readme import ROOT

PROBE = """
import json, sys
import shardrunner.cluster.worker.process as process
process.import_platforms()
print(json.dumps(sorted(sys.modules)))
"""


def test_worker_when_it_starts_imports_its_platforms_before_the_freeze_and_nothing_it_does_not_use() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    loaded = set(json.loads(out.stdout))
    # What the shards run on is imported before gc.freeze(), not at the first assignment.
    assert {"shardrunner.gateway.discord.shard", "picows", "zlib_ng", "zstandard"} <= loaded
    # The supervisor's REST discovery, the CLI and the simulator have no business in a worker.
    assert not {"aiohttp", "click", "psutil"} & loaded
    assert not {
        m for m in loaded if m.startswith(("shardrunner.sim", "shardrunner.cli", "shardrunner.settings"))
    }
