"""The house's floors hold: no import runs from a lower floor to a higher one, and no cycle.

Floors, from the ground up (docs/architecture.md draws them):

- ``capi_stream``: settings, errors, the event model, Avro, the Kafka edge, database
  connections. Imports nothing of the project.
- ``storage`` and ``meta_capi``: side by side on the core, neither importing the other.
- ``producers`` and ``consumers``: the two programs of the data path, side by side.
- ``ops`` (replay, export, DLQ tools, status) and ``devstack`` (``capi dev``).
- ``ops.cli``: the ``capi`` command group. Nothing imports it.

Every import statement counts, also those under ``TYPE_CHECKING`` and inside functions.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("capi_stream", "storage", "meta_capi", "producers", "consumers", "ops", "devstack")
BELOW: dict[str, set[str]] = {
    "capi_stream": set(),
    "storage": {"capi_stream"},
    "meta_capi": {"capi_stream"},
    "producers": {"capi_stream", "storage", "meta_capi"},
    "consumers": {"capi_stream", "storage", "meta_capi"},
    "ops": {"capi_stream", "storage", "meta_capi", "consumers"},
    "devstack": {"capi_stream", "storage", "meta_capi", "producers", "consumers"},
    "ops.cli": {"capi_stream", "storage", "meta_capi", "producers", "consumers", "ops", "devstack"},
}


def floor_of(module: str) -> str:
    return (
        "ops.cli" if module == "ops.cli" or module.startswith("ops.cli.") else module.split(".")[0]
    )


def module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield module_of(path), path


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every project import in the file, wherever it stands."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                yield node.lineno, name


MODULES = dict(project_modules())


def resolve(name: str) -> str:
    """The project module an import names (``from a.b import c`` may name module ``a.b.c``)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_every_floor_imports_only_what_stands_below_it() -> None:
    upward = [
        f"{path.relative_to(ROOT)}:{line} ({floor_of(module)}) imports {name}"
        for module, path in MODULES.items()
        for line, name in imports_of(path)
        if floor_of(name) != floor_of(module) and floor_of(name) not in BELOW[floor_of(module)]
    ]
    assert upward == []


def test_no_module_imports_itself_through_others() -> None:
    graph = {m: {resolve(n) for _, n in imports_of(p)} - {m} for m, p in MODULES.items()}
    # A module importing its own package (whose __init__ re-exports it) is not a design cycle.
    graph = {m: {t for t in targets if not m.startswith(f"{t}.")} for m, targets in graph.items()}
    cycles = [scc for scc in strongly_connected(graph) if len(scc) > 1]
    assert cycles == []


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the graph has hundreds of nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"],
        ["d"],
    ]


@pytest.mark.parametrize("forbidden", ["starlette", "alembic", "uvicorn", "producers.app"])
def test_the_publisher_library_is_light(forbidden: str) -> None:
    probe = "import sys; from producers.publisher import publish_event; print(sorted(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert f"'{forbidden}'" not in loaded
