"""Bad state files in the run dir (docs/cluster.md, bad input): the sessions file a stop saves and a
start resumes, and the channel changes a start reads back.

Truncated, corrupted or edited, a sessions file is refused with one line and the start identifies:
never a traceback, never a resume of a session the file did not hold as written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shardrunner.cluster import statefile
from shardrunner.cluster.supervisor.channels import load_changes
from shardrunner.protocol.envelope import SessionSnapshot
from shardrunner.protocol.keys import ConnKey
from tests.fuzz.corpus import corpus

TOKEN = "the-token"
CONNS = [ConnKey("discord", 0, i, 4) for i in range(4)]
SNAPS = [
    SessionSnapshot(conn=c, session_id=f"s{c.shard}", seq=100 + c.shard, resume_url="wss://r", keys=[c.shard])
    for c in CONNS
]


@pytest.fixture(scope="module")
def where() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sr-state-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _load(where: Path, data: bytes) -> tuple[list[SessionSnapshot], str]:
    (where / "sessions.json").write_bytes(data)
    loaded, why = statefile.load(where, CONNS, TOKEN, 3600)
    assert "\n" not in why, "one line"
    assert TOKEN not in why
    # What the other readers make of it: nothing, or the table's own.
    statefile.saved_sets(where, TOKEN, 3600)
    statefile.load_groups(where)
    return loaded, why


def _written(where: Path) -> bytes:
    statefile.write(where, TOKEN, CONNS, SNAPS, [("bots", None)])
    return (where / "sessions.json").read_bytes()


@pytest.fixture(scope="module")
def good(where: Path) -> bytes:
    """One table as written (the same bytes for every example: its length decides the draws)."""
    return _written(where)


@given(data=st.data())
def test_statefile_when_bytes_are_cut_flipped_or_spliced_never_resumes_what_was_not_written(
    where: Path, good: bytes, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(good) - 1))
    how = data.draw(st.sampled_from(["truncate", "flip", "insert", "replace"]))
    if how == "truncate":
        bad = good[:at]
    elif how == "flip":
        bad = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1 :]
    elif how == "insert":
        bad = good[:at] + data.draw(st.binary(min_size=1, max_size=8)) + good[at:]
    else:
        bad = good[:at] + data.draw(st.binary(max_size=8)) + good[at + data.draw(st.integers(1, 8)) :]
    loaded, why = _load(where, bad)
    if loaded:
        # Only a change that leaves the table as written (JSON whitespace, say) still resumes.
        assert loaded == SNAPS, why
    else:
        assert why.endswith("; identifying"), why


def _table(where: Path) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(_written(where))
    return decoded


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: t["snapshots"][0].update(seq=5), "digest does not match"),
        (lambda t: t["snapshots"][1].update(session_id="another"), "digest does not match"),
        (lambda t: t["snapshots"][2].update(conn=["discord", 0, 2, 8]), "digest does not match"),
        (lambda t: t.update(sets=[["discord", 0, 8]]), "digest does not match"),
        (lambda t: t["snapshots"].append(t["snapshots"][0]), "digest does not match"),
        (lambda t: t.update(token_fingerprint=statefile.fingerprint("other")), "digest does not match"),
    ],
)
def test_statefile_when_a_field_is_edited_refuses_the_whole_table(
    where: Path, edit: object, reason: str
) -> None:
    table = _table(where)
    edit(table)  # type: ignore[operator]
    loaded, why = _load(where, json.dumps(table).encode())
    assert loaded == []
    assert reason in why


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (lambda t: t["snapshots"].append(t["snapshots"][0]), "holds discord:0/4 twice"),
        (lambda t: t["snapshots"][2].update(conn=["discord", 0, 2, 8]), "of none of the sets it names"),
        (lambda t: t["snapshots"][3].update(conn=["discord", 0, 9, 4]), "impossible"),
        (lambda t: t["snapshots"][3].update(session_id=""), "impossible"),
    ],
)
def test_statefile_when_inconsistent_even_with_a_matching_digest_refuses_it(
    where: Path, edit: object, reason: str
) -> None:
    raw = _table(where)
    edit(raw)  # type: ignore[operator]
    table = msgspec.json.decode(json.dumps(raw), type=statefile.SessionTable)
    table.digest = statefile.digest_of(table)  # as if written so by a bug
    loaded, why = _load(where, msgspec.json.encode(table))
    assert loaded == []
    assert reason in why


def test_statefile_when_written_before_digests_resumes_and_says_so(where: Path) -> None:
    table = _table(where)
    del table["digest"]
    loaded, why = _load(where, json.dumps(table).encode())
    assert loaded == SNAPS
    assert "no digest" in why


def test_statefile_when_the_corpus_is_replayed_refuses_each_with_one_line(where: Path) -> None:
    for name, data in corpus("statefile"):
        loaded, why = _load(where, data)
        assert loaded == [], name
        assert why.endswith("identifying"), (name, why)


@given(
    doc=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(["added", "removed", "rates", "x"]) | st.text(max_size=4), inner, max_size=4
            )
        ),
        max_leaves=10,
    )
)
def test_channel_changes_when_the_file_holds_anything_reads_it_or_nothing(where: Path, doc: object) -> None:
    path = where / "channels.json"
    path.write_text(json.dumps(doc))
    added, removed, rates = load_changes(path)
    assert all(isinstance(c, str) for c in added + removed)
    assert all(isinstance(k, str) and isinstance(v, float) for k, v in rates.items())


def test_channel_changes_when_the_corpus_is_replayed_reads_nothing_and_says_so(
    where: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name, data in corpus("channels"):
        path = where / "channels.json"
        path.write_bytes(data)
        caplog.clear()
        assert load_changes(path) == ([], [], {}), name
        assert "cannot be read" in caplog.text, name
