"""``shardrunner reshard`` against a fake supervisor: the plan it prints, a refusal, following the
progress to the switch or an abort, and its one-sentence failures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from shardrunner.cli import main
from shardrunner.cli.reshard import plan_text, progress_text
from tests.cli.test_control import STATUS, FakeSupervisor

PLAN: dict[str, Any] = {
    "platform": "discord", "current": 4, "count": 8, "keys": 80, "capacity": 25, "fill": 0.8,
    "new_fill": 0.4, "starts_needed": 8, "starts_remaining": 990, "reserve": 10, "seconds": 0.7,
    "reason": "8 shards, as asked", "refused": None,
}  # fmt: skip
RESHARD: dict[str, Any] = {
    "platform": "discord", "phase": "warming", "current": 4, "count": 8, "generation": 1, "ready": 3,
    "keys_pending": 40, "withheld": 120, "step": 0, "step_text": "", "elapsed_s": 2.0, "ideal_s": 0.7,
    "reason": "8 shards, as asked", "outcome": None,
}  # fmt: skip


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def serve(tmp_path: Path, reshard: Any, phase: dict[str, Any] | None) -> FakeSupervisor:
    status = STATUS | {"reshard": phase}
    return FakeSupervisor(tmp_path, {"reshard": reshard, "status": {"ok": True, "result": status}})


@pytest.fixture
def fakes() -> Iterator[list[FakeSupervisor]]:
    made: list[FakeSupervisor] = []
    yield made
    for f in made:
        f.close()


def test_plan_text_when_printed_names_count_guilds_budget_and_time() -> None:
    text = plan_text(PLAN)
    assert text.splitlines()[0] == "reshard discord: 4 -> 8 shards (8 shards, as asked)"
    assert "80 (at most 25 per shard: fill 80% now, 40% after)" in text
    assert "identifies needed:  8" in text
    assert "990 (10 kept for reconnects)" in text
    assert "at best 1 s" in text


def test_progress_text_when_warming_or_switching_says_where_it_is() -> None:
    assert progress_text(RESHARD) == (
        "warming: 3/8 new shards ready, 40 guilds to come, 120 events held back, 2 s (at best 1 s)"
    )
    switching = RESHARD | {"phase": "switching", "step": 2, "step_text": "the new shards deliver"}
    assert progress_text(switching) == "switching, step 2/4: the new shards deliver (2 s)"
    assert (
        progress_text(RESHARD | {"phase": "aborted", "outcome": "reshard aborted: x"}) == "reshard aborted: x"
    )


def test_dry_run_when_refused_prints_the_plan_and_the_reason_and_exits_1(
    tmp_path: Path, fakes: list[FakeSupervisor]
) -> None:
    refused = {"plan": PLAN | {"refused": "no"}, "started": False, "message": "refused: Discord allows 3"}
    fake = serve(tmp_path, {"ok": True, "result": refused}, None)
    fakes.append(fake)
    result = invoke("reshard", "--shards", "8", "--dry-run", "--run-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "reshard discord: 4 -> 8 shards" in result.output
    assert result.output.rstrip().endswith("refused: Discord allows 3")
    assert fake.seen == [{"command": "reshard", "shards": 8, "dry_run": True}]


def test_reshard_when_started_follows_until_switched(tmp_path: Path, fakes: list[FakeSupervisor]) -> None:
    started = {"plan": PLAN, "started": True, "message": "resharding discord from 4 to 8 shards"}
    fake = serve(
        tmp_path, {"ok": True, "result": started}, RESHARD | {"phase": "done", "outcome": "resharded"}
    )
    fakes.append(fake)
    result = invoke("reshard", "--run-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == "resharded"
    assert fake.seen[0] == {"command": "reshard", "shards": "auto", "dry_run": False}


def test_reshard_when_aborted_while_followed_exits_1(tmp_path: Path, fakes: list[FakeSupervisor]) -> None:
    started = {"plan": PLAN, "started": True, "message": "resharding"}
    aborted = RESHARD | {"phase": "aborted", "outcome": "reshard aborted: a new shard closed fatally"}
    fakes.append(serve(tmp_path, {"ok": True, "result": started}, aborted))
    result = invoke("reshard", "--shards", "8", "--run-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == "reshard aborted: a new shard closed fatally"


def test_reshard_when_the_cluster_refuses_says_why_in_one_sentence(
    tmp_path: Path, fakes: list[FakeSupervisor]
) -> None:
    fakes.append(
        serve(tmp_path, {"ok": False, "error": "a reshard is under way (warming); one at a time"}, None)
    )
    result = invoke("reshard", "--run-dir", str(tmp_path))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: a reshard is under way (warming); one at a time"


def test_reshard_when_no_cluster_runs_says_so(tmp_path: Path) -> None:
    result = invoke("reshard", "--run-dir", str(tmp_path / "nothing"))
    assert result.exit_code == 1
    assert "Error:" in result.output
    assert "Traceback" not in result.output


def test_reshard_when_shards_is_not_a_number_is_refused_by_the_option() -> None:
    result = invoke("reshard", "--shards", "many")
    assert result.exit_code == 2
    assert "must be auto or a whole number" in result.output
