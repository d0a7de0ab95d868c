"""What ``import shardrunner.client`` loads into a bot process."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN_MODULES = ("click", "psutil", "zstandard", "zlib_ng", "hikari")
FORBIDDEN_PACKAGES = ("shardrunner.cluster", "shardrunner.gateway", "shardrunner.settings")


def test_client_when_imported_loads_neither_the_cluster_the_gateway_nor_their_libraries() -> None:
    # A fresh interpreter: this one has loaded everything the other tests use.
    code = "import json, sys, shardrunner.client; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert "shardrunner.client.client" in loaded
    bad = [
        name
        for name in loaded
        if name.split(".")[0] in FORBIDDEN_MODULES
        or any(name == pkg or name.startswith(pkg + ".") for pkg in FORBIDDEN_PACKAGES)
    ]
    assert bad == []
