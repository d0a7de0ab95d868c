"""`ClusterProcess`: a real `shardrunner start` process, here one that cannot start (no API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cluster import ClusterProcess
from harness.procs import NotReady, free_port
from tests.conftest import TOKEN


async def test_cluster_process_wait_ready_when_the_cluster_exits_raises_not_ready(tmp_path: Path) -> None:
    # Nothing listens on the port: discovery fails and the supervisor exits.
    api = f"http://127.0.0.1:{free_port()}/api/v10"
    cluster = ClusterProcess(api, token=TOKEN, run_dir=tmp_path / "run", shards=2, output=True)
    try:
        with pytest.raises(NotReady, match="the cluster stopped with status"):
            await cluster.wait_ready(timeout=60)
        assert "--shards" in cluster.command
        assert cluster.output()
    finally:
        await cluster.stop(grace=5)
    assert (tmp_path / "run").exists(), "a run dir given is the caller's to remove"


async def test_cluster_process_stop_when_it_made_the_run_dir_removes_it() -> None:
    cluster = ClusterProcess(f"http://127.0.0.1:{free_port()}/api/v10", token=TOKEN, output=True)
    run_dir = cluster.run_dir
    assert run_dir.is_dir()
    await cluster.stop(grace=5)
    assert not run_dir.exists()


async def test_cluster_process_wait_ready_when_no_count_is_known_refuses() -> None:
    cluster = ClusterProcess(f"http://127.0.0.1:{free_port()}/api/v10", token=TOKEN, output=True)
    try:
        with pytest.raises(ValueError, match="needs a shard count"):
            await cluster.wait_ready()
    finally:
        await cluster.stop(grace=5)
