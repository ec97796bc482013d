"""No import circle inside the package: read every module's imports with `ast`, fail on a cycle.

Every `import` and `from ... import` counts, at the top of a module or inside a function (a lazy
import is still a dependency), relative ones resolved. `from a.b import c` is an edge to the module
`a.b.c` when `c` is a module, else to `a.b` (for a package: its `__init__`). Importing `a.b.c` also
runs the parent packages' `__init__`s, but that is Python's load order, not a use of what they
define: a package whose `__init__` imports its own modules (the registration pattern of `envs`,
`organism.families`) would otherwise be a circle with every one of them.
"""

from __future__ import annotations

import ast

from .conftest import ROOT

PACKAGE = ROOT / "personadrift"


def modules() -> dict[str, tuple]:
    """{dotted name: (file, is a package)} for every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def imports_of(name: str, path, is_package: bool, known: set[str]) -> set[str]:
    """The package modules that `name` imports."""
    here = name.split(".") if is_package else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name in known}
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:
                    out.add(sub)
                elif target in known:
                    out.add(target)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(name, *mods[name], set(mods)) for name in mods}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None (depth-first search with colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(edges.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w) :] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(edges):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_graph_sees_lazy_relative_and_package_imports():
    g = graph()
    assert "personadrift.config" in g["personadrift.cli"]
    assert "personadrift.envs" in g["personadrift.checks"]  # `from personadrift.envs import ENVS`
    assert (
        "personadrift.envs.visible_tests" in g["personadrift.envs"]
    )  # `from personadrift.envs import visible_tests`
    assert "personadrift.evals.runner" in g["personadrift.models"]  # inside a function


def test_find_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_modules():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    """One direction between the package's folders too (e.g. the organism imports neither the
    evals nor the probes that measure it)."""
    folders: dict[str, set[str]] = {}
    for a, targets in graph().items():
        top = ".".join(a.split(".")[:2])
        folders.setdefault(top, set()).update(
            ".".join(b.split(".")[:2]) for b in targets if not b.startswith(top + ".") and b != top
        )
    cycle = find_cycle(folders)
    assert cycle is None, "import cycle between folders: " + " -> ".join(cycle)


def test_the_config_package_imports_no_other_module_of_the_package():
    edges = graph()
    for name in (
        n for n in edges if n == "personadrift.config" or n.startswith("personadrift.config.")
    ):
        assert all(t.startswith("personadrift.config") for t in edges[name]), (name, edges[name])
