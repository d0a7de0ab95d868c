"""The fuzz corpus kept in the repository: tests/fuzz/corpus/<target>/<name>, one input per file.

Each file holds raw bytes (a gateway frame, an IRC line, a bus message, a settings file...). Every test
run replays every file of its target, so an input that once crashed something stays checked. A file
whose name ends in ``.hex`` holds the input as hexadecimal text (whitespace ignored), for inputs that
are easier to read and review that way.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent / "corpus"


def corpus(target: str) -> list[tuple[str, bytes]]:
    """Every input of ``target``, as (file name, bytes), sorted by name; fails if there is none."""
    folder = ROOT / target
    items: list[tuple[str, bytes]] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(".hex"):
            data = bytes.fromhex("".join(data.decode("ascii").split()))
        items.append((path.name, data))
    if not items:
        raise AssertionError(f"the fuzz corpus {folder} is empty")
    return items
