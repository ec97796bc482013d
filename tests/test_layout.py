"""The package's shape, as a newcomer meets it: a short root, short functions, one meaning a name."""

from __future__ import annotations

import ast
from collections import defaultdict

from .conftest import ROOT

PACKAGE = ROOT / "personadrift"
MAX_ROOT_MODULES = 5  # besides __init__ and __main__
MAX_FUNCTION_LINES = 80
# names defined in more than one module with one meaning each time
SAME_MEANING = {
    "main": "a module's command-line entry point",
    "arms": "a study's arms (`study warning`, `study mitigations`)",
    "check_inputs": "a study's argument checks, before anything runs",
    "_combos": "a family's prompt combinations (one per family module)",
    "_fresh": "a family's held-out-only prompt combinations (one per family module)",
}


def test_the_package_root_holds_at_most_five_modules():
    root = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    assert len(root) <= MAX_ROOT_MODULES, root


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.name} ({lines} lines)")
    assert not long, long


def test_a_module_level_name_has_one_meaning():
    where = defaultdict(list)
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                where[node.name].append(str(path.relative_to(ROOT)))
    shared = {name: paths for name, paths in where.items() if len(paths) > 1}
    assert set(shared) <= set(SAME_MEANING), {n: shared[n] for n in set(shared) - set(SAME_MEANING)}
