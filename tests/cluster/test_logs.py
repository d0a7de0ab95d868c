"""JSON log lines: one object per line, parseable, with the connection when given; and a real
cluster with --log-format json whose supervisor and worker lines all parse."""

from __future__ import annotations

import io
import json
import logging
import signal
from pathlib import Path
from typing import Any

import pytest

from shardrunner.cluster import logs
from shardrunner.protocol.keys import ConnKey
from tests.cluster.conftest import Cluster
from tests.conftest import SimFactory


def test_json_formatter_when_a_record_names_a_connection_and_fails_writes_one_object() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("worker 1.2"))
    log = logging.getLogger("test.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("shard %s: line\nbreak", "3", extra={"conn": ConnKey("discord", 0, 3, 8)})
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, "one line per record, whatever the message holds"
    first, second = (json.loads(line) for line in lines)
    assert first["msg"] == "shard 3: line\nbreak"
    assert first["conn"] == "discord:3/8"
    assert (first["level"], first["logger"], first["process"]) == ("warning", "test.logs", "worker 1.2")
    assert first["ts"].endswith("+00:00")
    assert "ValueError: boom" in second["exc"]
    assert "conn" not in second


def test_json_formatter_when_a_connection_is_a_message_argument_names_it() -> None:
    conn = ConnKey("discord", 1, 2, 4)
    formatter = logs.JsonFormatter("supervisor")
    record = logging.LogRecord(
        "shardrunner.shard", logging.WARNING, __file__, 1, "%s: zombie after %.1f s", (conn, 41.25), None
    )
    line = json.loads(formatter.format(record))
    assert line["conn"] == "discord:2/4@1"
    assert line["msg"] == "discord:2/4@1: zombie after 41.2 s"
    plain = logging.LogRecord(
        "shardrunner.worker", logging.INFO, __file__, 1, "worker %d: %s", (3, "up"), None
    )
    assert "conn" not in json.loads(formatter.format(plain))


def test_configure_when_the_format_is_unknown_says_which_exist() -> None:
    with pytest.raises(ValueError, match="text, json"):
        logs.configure("info", "xml", process="supervisor")


async def test_cluster_with_json_logs_when_running_writes_only_json_lines(
    sim_factory: SimFactory, tmp_path: Path
) -> None:
    sim = await sim_factory(shards=2, guilds_per_shard=1, rate=10, identify_window=0.1)
    c = Cluster(sim, tmp_path / "run", "--workers", "1", "--log-format", "json")
    try:
        await c.ready(2)
        c.proc.send_signal(signal.SIGTERM)
        assert await c.exit_code(30) == 0
        out = [line for line in c.output().splitlines() if line.strip()]
    finally:
        await c.stop(grace=20)
    worker_log = (tmp_path / "run" / "worker-0.log").read_text().splitlines()
    records: list[dict[str, Any]] = [json.loads(line) for line in out + [w for w in worker_log if w.strip()]]
    processes = {r["process"] for r in records}
    assert "supervisor" in processes
    assert any(p.startswith("worker 0.") for p in processes)
    ready = [r for r in records if r["msg"].endswith("guilds") and "ready with" in r["msg"]]
    assert {r.get("conn") for r in ready} == {"discord:0/2", "discord:1/2"}, "each READY line names its shard"
