"""The harness serves tests and benchmarks alike: it imports neither, and benchmarks import no tests."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported(folder: str) -> dict[str, set[str]]:
    """Top-level package of every import, by module file below ``folder``."""
    out: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names
    return out


def test_harness_imports_when_read_name_neither_tests_nor_benchmarks() -> None:
    found = imported("harness")
    assert found, "harness/ has modules"
    assert {m: n & {"tests", "benchmarks"} for m, n in found.items() if n & {"tests", "benchmarks"}} == {}


def test_benchmarks_imports_when_read_name_no_tests() -> None:
    assert {m for m, n in imported("benchmarks").items() if "tests" in n} == set()
