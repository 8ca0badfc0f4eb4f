"""The layers import one way (models <- streaming <- service; trainer, evaluation, bench and
demo beside them) and no two modules import each other, even lazily inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# folder -> the package it installs as (pyproject's package-dir)
PACKAGES = {
    "models": "hush.models",
    "streaming": "hush.streaming",
    "service": "hush.service",
    "trainer": "hush.trainer",
    "bench": "hush.bench",
    "evaluation": "hush.evaluation",
    "demo": "hush.demo",
    "hush": "hush",
}
# what each layer may import from hush besides itself
ALLOWED = {
    "hush.models": set(),
    "hush.streaming": {"hush.models"},
    "hush.service": {"hush.models", "hush.streaming"},
    "hush.trainer": {"hush.models"},
}


def _modules() -> dict[str, Path]:
    found = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).glob("*.py"):
            found[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return found


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every hush module ``name`` imports, at module level or inside functions."""
    package = name if path.stem == "__init__" else name.rsplit(".", 1)[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        targets |= {c for c in candidates if c in known and c != name}
    return targets


def _layer(module: str) -> str:
    return ".".join(module.split(".")[:2])


MODULES = _modules()
GRAPH = {name: _imports(name, path, MODULES) for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in GRAPH[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in GRAPH:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert _cycles() == []


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_downwards_only(layer: str) -> None:
    wrong = {
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if _layer(module) == layer
        for target in targets
        if _layer(target) not in ALLOWED[layer] | {layer}
    }
    assert not wrong


def test_the_check_sees_a_cycle() -> None:
    """The graph is real: the service's app imports its routers, which must not import it back."""
    assert "hush.service.ws" in GRAPH["hush.service.app"]
    assert "hush.service.app" not in GRAPH["hush.service.ws"]
