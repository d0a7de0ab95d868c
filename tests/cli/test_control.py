"""``status``, ``reload`` and ``stop`` against a fake supervisor (a control socket answered by a
thread), and their one-sentence failures."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zmq
from click.testing import CliRunner, Result

from shardrunner.cli import main
from shardrunner.cli.control import status_text
from shardrunner.rundir import RunDir


def conn_row(
    conn: str, platform: str, generation: int, shard: int, count: int, worker: int
) -> dict[str, Any]:
    return {
        "conn": conn,
        "platform": platform,
        "generation": generation,
        "shard": shard,
        "count": count,
        "worker": worker,
        "state": "ready",
        "latency_ms": 41.6,
        "events_per_s": 12.5,
        "events": 100,
        "keys": 10,
        "resumes": 1,
        "identifies": 1,
        "last_resume_ago_s": 75.0,
    }


STATUS: dict[str, Any] = {
    "supervisor": {
        "pid": 1,
        "state": "running",
        "run_dir": "/run",
        "api_url": "http://x",
        "gateway_url": "ws://127.0.0.1:9",
        "simulator": None,
        "num_shards": 2,
        "max_concurrency": 1,
        "uptime_s": 3700.0,
        "error": None,
    },
    "workers": [
        {
            "slot": 0,
            "pid": 4242,
            "cpu_percent": 3.0,
            "rss": 52428800,
            "conns": 2,
            "state": "running",
            "ready": True,
        }
    ],
    "conns": [
        conn_row("discord:0/4", "discord", 0, 0, 4, 0),
        conn_row("discord:0/8@1", "discord", 1, 0, 8, 0),
    ],
    "groups": [
        {"group": "bot", "members": 1, "held_events": 5, "held_bytes": 1048576, "inflight": 2, "dropped": 0}
    ],
}


class FakeSupervisor:
    """Answers control commands on a run dir's socket from a thread: ``replies`` by command name."""

    def __init__(self, run_dir: Path, replies: dict[str, Any]) -> None:
        self.where = RunDir(run_dir)
        self.replies = replies
        self.seen: list[dict[str, Any]] = []
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.bind(self.where.control_endpoint)
        self.where.pid_file.write_text(f"{os.getpid()}\n")
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            if not self.sock.poll(50):
                continue
            ident, _, body = self.sock.recv_multipart()
            request = msgspec.json.decode(body)
            self.seen.append(request)
            reply = self.replies[request["command"]]
            self.sock.send_multipart([ident, b"", msgspec.json.encode(reply)])

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[FakeSupervisor]:
    fake = FakeSupervisor(
        tmp_path,
        {
            "status": {"ok": True, "result": STATUS},
            "reload": {"ok": True, "result": {"message": "reload done: 1 workers replaced"}},
            "stop": {"ok": True, "result": {"message": "stopping: the sessions are saved"}},
        },
    )
    try:
        yield fake
    finally:
        fake.close()


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_status_when_cluster_answers_prints_connections_by_conn(
    supervisor: FakeSupervisor, tmp_path: Path
) -> None:
    result = invoke("status", "--run-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "cluster running: 2 connections, supervisor pid 1, up 1h01m, gateway ws://127.0.0.1:9"
    rows = [line for line in lines if line.startswith("discord:")]
    assert [row.split()[0] for row in rows] == ["discord:0/4", "discord:0/8@1"]
    assert "42 ms" in rows[0]
    assert "1m15s ago" in rows[0]
    assert any(line.startswith("bot ") for line in lines)
    assert supervisor.seen == [{"command": "status"}]


def test_status_when_json_asked_prints_the_answer_as_is(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    result = invoke("status", "--run-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == STATUS


def test_reload_when_done_prints_the_message_and_exits_0(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    result = invoke("reload", "--run-dir", str(tmp_path))
    assert (result.exit_code, result.output) == (0, "reload done: 1 workers replaced\n")


def test_stop_when_cluster_answers_prints_its_message(supervisor: FakeSupervisor, tmp_path: Path) -> None:
    result = invoke("stop", "--run-dir", str(tmp_path))
    assert (result.exit_code, result.output) == (0, "stopping: the sessions are saved\n")


def test_status_text_when_status_names_shards_only_builds_the_conn_names() -> None:
    old = {**STATUS, "conns": None, "shards": [{"id": 3, "worker": 0, "state": "ready", "guilds": 7}]}
    old["supervisor"] = {**STATUS["supervisor"], "num_shards": 8}
    rows = [line for line in status_text(old).splitlines() if line.startswith("discord:")]
    assert rows[0].split()[:3] == ["discord:3/8", "0", "ready"]


def test_status_text_when_a_controller_filters_says_how_many_events_it_dropped() -> None:
    worker = {
        **STATUS["workers"][0],
        "filtered": 1234,
        "hook_failures": {"identify": 1, "accept": 3},
        "bus_rejected": 5,
    }
    controller = {"name": "mybot.ops.Ops", "hooks": ["accept", "identify"], "failures": {"should_reshard": 2}}
    text = status_text({**STATUS, "workers": [worker], "controller": controller})
    [row] = [line for line in text.splitlines() if line.strip().startswith("0 ")]
    assert row.endswith(
        "running, ready, 1234 events filtered by the controller, 5 bots' messages refused by its bus; "
        "failed calls: accept 3, identify 1"
    )
    assert "controller mybot.ops.Ops: accept, identify; failed calls: should_reshard 2" in text.splitlines()
    assert "controller" not in status_text(STATUS)


@pytest.mark.parametrize("command", ["status", "reload", "stop", "tail"])
def test_command_when_run_dir_is_a_file_fails_with_one_sentence(tmp_path: Path, command: str) -> None:
    path = tmp_path / "run"
    path.write_text("")
    result = CliRunner().invoke(main, [command, "--run-dir", str(path)])
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the run directory {path} is a file, not a directory: remove it or pass another --run-dir "
        "(or set SHARDRUNNER_RUN_DIR)\n"
    )


@pytest.mark.parametrize("command", ["status", "reload", "stop"])
def test_command_when_run_dir_is_under_a_file_fails_with_one_sentence(tmp_path: Path, command: str) -> None:
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(main, [command, "--run-dir", str(tmp_path / "file" / "run")])
    assert result.exit_code == 1
    assert "as the run directory: not a directory" in result.output
    assert "Traceback" not in result.output


def test_status_when_run_dir_comes_from_env_uses_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["status"], env={"SHARDRUNNER_RUN_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert f"no cluster is running in {tmp_path}" in result.output


def test_status_when_supervisor_is_dead_says_so_at_once(tmp_path: Path) -> None:
    RunDir(tmp_path).control_sock.write_text("")
    RunDir(tmp_path).pid_file.write_text("999999999\n")
    result = CliRunner().invoke(main, ["status", "--run-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "its supervisor is gone" in result.output
