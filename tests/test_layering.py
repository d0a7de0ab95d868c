"""The import rules of docs/architecture.md, read from the source with ast.

Each rule names a layer (a module or package prefix) and the project layers it may import; the
longest matching prefix decides a module's layer. Imports under ``if TYPE_CHECKING:`` count for the
rules (they still say which way knowledge flows) but not for cycles (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "shardrunner"

#: layer -> the project layers it may import (itself always). "*" allows every layer.
ALLOWED: dict[str, set[str]] = {
    "shardrunner.protocol": set(),
    "shardrunner.rundir": set(),
    "shardrunner.clock": set(),
    "shardrunner.curve": set(),
    "shardrunner.control": {"shardrunner.rundir", "shardrunner.curve"},
    "shardrunner.identify": {"shardrunner.protocol", "shardrunner.clock"},
    "shardrunner.gateway": {"shardrunner.protocol", "shardrunner.clock", "shardrunner.identify"},
    "shardrunner.bus": {"shardrunner.protocol", "shardrunner.curve"},
    "shardrunner.client": {
        "shardrunner.protocol",
        "shardrunner.bus.protocol",
        "shardrunner.rundir",
        "shardrunner.control",
        "shardrunner.curve",
    },
    "shardrunner.settings": {"shardrunner.protocol", "shardrunner.rundir", "shardrunner.curve"},
    # What bots' packages subclass: loads nothing of the cluster or the gateway.
    "shardrunner.controller": {"shardrunner.protocol"},
    "shardrunner.cluster": {
        "shardrunner.protocol",
        "shardrunner.rundir",
        "shardrunner.clock",
        "shardrunner.control",
        "shardrunner.curve",
        "shardrunner.identify",
        "shardrunner.gateway",
        "shardrunner.bus",
        "shardrunner.settings",
        "shardrunner.controller",
    },
    # The Redis side of several hosts: driven by the supervisor, knowing nothing of it or the worker.
    "shardrunner.cluster.hosts": {"shardrunner.protocol", "shardrunner.identify", "shardrunner.cluster.plan"},
    "shardrunner.sim": {"shardrunner.protocol", "shardrunner.settings"},
    # Existing bots on the stream (discord.py, hikari): what a bot process imports, and the bot
    # library (an optional extra).
    "shardrunner.adapters": {"shardrunner.protocol", "shardrunner.client"},
    "shardrunner.cli": {"*"},
    "shardrunner": {"*"},  # __init__ and __main__
}

#: Imports a layer must never make, even where its rule above would allow the package.
FORBIDDEN: dict[str, set[str]] = {
    "shardrunner.cluster.supervisor": {"shardrunner.sim", "shardrunner.cluster.worker"},
}

#: Third-party modules a bot process must not load through ``import shardrunner.client``.
CLIENT_MUST_NOT_LOAD = {"click", "psutil", "zstandard", "zlib_ng", "discord", "hikari"}

#: Modules outside every platform package: nothing in them may say guild, op or d.
PLATFORM_NEUTRAL = (
    "shardrunner.cluster",
    "shardrunner.bus",
    "shardrunner.identify",
    "shardrunner.rundir",
    "shardrunner.control",
    "shardrunner.clock",
    "shardrunner.curve",
    "shardrunner.gateway.connection",
    "shardrunner.gateway.platform",
    "shardrunner.gateway.transport",
    "shardrunner.gateway.limiter",
    "shardrunner.gateway.backoff",
)


@dataclass
class Module:
    name: str
    path: Path
    tree: ast.Module
    #: (imported module, runs at import time)
    imports: list[tuple[str, bool]] = field(default_factory=list)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(module: Module) -> Iterator[tuple[str, bool]]:
    package = module.name if module.path.name == "__init__.py" else module.name.rpartition(".")[0]

    def walk(nodes: list[ast.stmt], runtime: bool, top: bool) -> Iterator[tuple[str, bool]]:
        for node in nodes:
            if isinstance(node, ast.If) and _is_type_checking(node):
                yield from walk(node.body, False, top)
                yield from walk(node.orelse, runtime, top)
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield alias.name, runtime and top
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                yield target, runtime and top
                for alias in node.names:  # `from pkg import module` imports the module
                    yield f"{target}.{alias.name}", runtime and top
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    inner = not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    yield from walk([child], runtime, top and inner)

    yield from walk(module.tree.body, True, True)


def _load() -> dict[str, Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = Module(_module_name(path), path, ast.parse(path.read_text(), str(path)))
        modules[module.name] = module
    for module in modules.values():
        module.imports = list(_imports(module))
    return modules


MODULES = _load()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (a `from pkg import Name` resolves to ``pkg``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _layer(name: str, table: dict[str, set[str]]) -> str | None:
    best = None
    for prefix in table:
        if (name == prefix or name.startswith(prefix + ".")) and (best is None or len(prefix) > len(best)):
            best = prefix
    return best


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_layering_when_imports_are_read_every_module_keeps_to_its_layer() -> None:
    broken = []
    for module in MODULES.values():
        layer = _layer(module.name, ALLOWED)
        assert layer is not None, f"{module.name} has no layer in docs/architecture.md"
        allowed = ALLOWED[layer]
        forbidden = FORBIDDEN.get(_layer(module.name, FORBIDDEN) or "", set())
        for imported, _ in module.imports:
            target = _resolve(imported)
            if target is None:
                continue
            if any(_within(target, f) for f in forbidden):
                broken.append(f"{module.name} imports {target}")
            elif "*" in allowed or _within(target, layer):
                continue
            elif MODULES[target].path.name == "__init__.py" and any(_within(a, target) for a in allowed):
                continue  # the package of an allowed module: importing that module runs it anyway
            elif not any(_within(target, a) for a in allowed):
                broken.append(f"{module.name} ({layer}) imports {target}")
    assert not broken, "\n".join(sorted(set(broken)))


def _runtime_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES.values():
        targets = {_resolve(i) for i, runtime in module.imports if runtime}
        graph[module.name] = {t for t in targets if t is not None and t != module.name}
    return graph


def test_layering_when_imports_are_read_there_is_no_import_cycle() -> None:
    graph = _runtime_graph()
    # A package's __init__ importing its own submodules is not a cycle of layers.
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not _within(name, t)}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "\n".join(cycles)


def test_layering_when_the_client_is_imported_it_loads_no_heavy_or_cluster_module() -> None:
    graph = _runtime_graph()
    seen, todo = set(), ["shardrunner.client"]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(graph.get(name, ()))
    third_party = {
        i.partition(".")[0]
        for n in seen
        for i, runtime in MODULES[n].imports
        if runtime and _resolve(i) is None
    }
    assert not third_party & CLIENT_MUST_NOT_LOAD
    assert not {
        n
        for n in seen
        if n.startswith(("shardrunner.cluster", "shardrunner.gateway", "shardrunner.settings"))
    }


def _platform_words(tree: ast.Module) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
            names = [node.arg]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names = [node.name]
        for name in names:
            if "guild" in name.lower() or name in ("op", "d"):
                yield node.lineno, name


@pytest.mark.parametrize("name", sorted(n for n in MODULES if any(_within(n, p) for p in PLATFORM_NEUTRAL)))
def test_layering_when_a_module_is_platform_neutral_it_says_no_guild_op_or_d(name: str) -> None:
    words = [f"line {line}: {word}" for line, word in _platform_words(MODULES[name].tree)]
    assert not words, "\n".join(words)


#: docs/architecture.md: "Modules stay within 400 lines".
MAX_MODULE_LINES = 400


def test_layering_when_modules_are_counted_none_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in sorted(PACKAGE.rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}, f"split these modules: {long}"
