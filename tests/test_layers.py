"""The import graph of gibbslda/ and cli/, read from the source (ast), imports inside
functions included: no circles, and the core never imports the applications.

Core: the kernels, the random streams, the sampler, the estimator, io and what they stand
on. Applications: preprocessing, recommendation, profiles, the report, demand, the CLI.
Data flows one way (events -> corpus -> model -> outputs), so must the imports.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("gibbslda._kernels", "gibbslda._rng", "gibbslda.packed", "gibbslda.sampler",
        "gibbslda.model", "gibbslda.io", "gibbslda.layout", "gibbslda.heldout",
        "gibbslda.scores", "gibbslda.fitted")
APPLICATIONS = ("gibbslda.preprocess", "gibbslda.recommend", "gibbslda.profiles",
                "gibbslda.report", "gibbslda.demand", "gibbslda.demand_eval",
                "gibbslda.cli")


def _modules() -> dict[str, Path]:
    """Module name -> file, for every .py under gibbslda/ and cli/ (as gibbslda.cli)."""
    found = {}
    for base, prefix in ((ROOT / "gibbslda", "gibbslda"), (ROOT / "cli", "gibbslda.cli")):
        for file in base.rglob("*.py"):
            parts = list(file.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = file
    return found


def _resolve(name: str, modules) -> str | None:
    """The longest known module that ``name`` is or lies in (None: not ours)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, file: Path, modules) -> set[str]:
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(file.read_text(), str(file))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import sub` imports the submodule when there is one
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                out.add(target)
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, file, modules) for name, file in modules.items()}


def _in(module: str, group) -> bool:
    return any(module == g or module.startswith(g + ".") for g in group)


def _cycle(graph) -> list[str] | None:
    """One import circle, or None (depth-first search with colours)."""
    colour, stack = {}, []

    def visit(node):
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in colour and (found := visit(nxt)):
                return found
        colour[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in colour and (found := visit(node)):
            return found
    return None


def _is_parent(a: str, b: str) -> bool:
    """A package importing its own submodule (or a submodule its package) is not a
    layering question: ``gibbslda/__init__`` names its public modules."""
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_graph_sees_the_known_edges():
    graph = import_graph()
    assert "gibbslda.sampler" in graph["gibbslda.model"]
    assert "gibbslda._kernels" in graph["gibbslda.sampler"]
    assert "gibbslda.cli.common" in graph["gibbslda.cli.train"]


def test_no_import_circle():
    graph = import_graph()
    graph = {a: {b for b in bs if not _is_parent(a, b)} for a, bs in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_core_never_imports_applications():
    wrong = sorted(f"{a} imports {b}" for a, bs in import_graph().items() if _in(a, CORE)
                   for b in bs if _in(b, APPLICATIONS))
    assert not wrong, wrong


def test_cycle_finder_finds_a_planted_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycle(graph) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
