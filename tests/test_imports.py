"""The import contract, read from the source itself (every import, lazy ones included): each package
sits on a layer and imports only from its own layer or below; no module imports itself back in a
circle; the analysis never imports the runner, an executor, a backend or a verifier."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"

LAYERS = [
    {"errors", "specs", "config", "retry", "lock", "cost", "jsonsafe"},  # plain helpers
    {"attempts", "lab", "tasks"},                                  # attempt rows, the lab's models, task families
    {"backends"},                                                  # models behind one protocol
    {"store", "store_schema", "store_ids", "store_read"},          # the SQLite store: its schema, ids, fast reads
    {"verifiers", "plans"},                                        # scoring answers; plan specs and policy files
    {"analysis"},                                                  # traces, estimators, surface, verdict
    {"allocation"},                                                # adaptive allocation: estimates, fit, judge
    {"execute"},                                                   # one executor per plan kind
    {"runner"},                                                    # tasks x plans on one model, into the store
    {"closing", "report", "results", "listings", "serve", "export"},         # what a run, a folder, the registries show; serving
    {"study", "size_sweep", "optimisation_sweep", "terminal", "progress"},  # the main job, the size sweeps; terminal output
    {"cli", "cli_lab", "cli_serve", "cli_forecast", ""},                                      # the command; the package's own API
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def modules() -> dict[str, set[str]]:
    """module -> the widthdepth modules it imports (anywhere in its body)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in (SRC / "widthdepth").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        graph[name]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("widthdepth"):
                graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name.startswith("widthdepth"))
    return graph


def package(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_every_package_imports_only_its_own_layer_or_below():
    graph = modules()
    assert {package(m) for m in graph} <= set(LAYER), f"place new packages in LAYERS: {set(map(package, graph)) - set(LAYER)}"
    wrong = sorted(f"{m} ({LAYER[package(m)]}) imports {i} ({LAYER[package(i)]})" for m, imports in graph.items()
                   for i in imports if LAYER[package(i)] > LAYER[package(m)])
    assert not wrong, "\n".join(wrong)


def test_no_import_circles():
    graph = modules()
    known = set(graph)

    def resolve(name: str) -> str | None:  # `from widthdepth.x import y` where y is a module or a name
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges = {m: {r for i in imports if (r := resolve(i)) and r != m and not m.startswith(r + ".")}
             for m, imports in graph.items()}  # a module's own package __init__ is not a circle
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(path[path.index(n):] + [n]))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m)


def test_the_analysis_never_imports_the_runner_or_a_backend():
    graph = modules()
    banned = ("widthdepth.runner", "widthdepth.execute", "widthdepth.backends", "widthdepth.verifiers")
    found = sorted(f"{m} imports {i}" for m, imports in graph.items() if package(m) in ("analysis", "allocation")
                   for i in imports if i.startswith(banned))
    assert not found, "\n".join(found)


def test_no_file_over_400_lines_and_no_function_over_60():
    long = []
    for path in sorted((SRC / "widthdepth").rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            long.append(f"{path.relative_to(SRC)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 60:
                long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, "split these:\n" + "\n".join(long)
