"""evaluate.py builds nothing from the training code: the evaluate package, and everything it
imports in turn (module level or inside functions), reaches no module of the train package."""

from __future__ import annotations

import ast
from pathlib import Path

import virnucpro_trainer

PACKAGE_DIR = Path(virnucpro_trainer.__file__).parent
NAME = "virnucpro_trainer"


def module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = PACKAGE_DIR.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(module: str) -> set[str]:
    """The project's modules that `module` imports anywhere in its file, with their packages."""
    path = module_file(module)
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` imports pkg.mod when mod is a module
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != NAME:
                continue
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a module imports its packages first
                if module_file(".".join(parts[:i])):
                    found.add(".".join(parts[:i]))
    return found


def reachable(start: set[str]) -> dict[str, str]:
    """Every project module reachable from `start`, with the module that first imported it."""
    seen = {m: "" for m in start}
    todo = list(start)
    while todo:
        module = todo.pop()
        for child in imported_modules(module):
            if child not in seen:
                seen[child] = module
                todo.append(child)
    return seen


def chain(seen: dict[str, str], module: str) -> str:
    path = [module]
    while seen[path[-1]]:
        path.append(seen[path[-1]])
    return " <- ".join(path)


def test_the_evaluate_package_imports_nothing_from_training():
    start = {
        f"{NAME}.evaluate.{p.stem}" if p.stem != "__init__" else f"{NAME}.evaluate"
        for p in (PACKAGE_DIR / "evaluate").glob("*.py")
    }
    assert f"{NAME}.evaluate.pipeline" in start
    seen = reachable(start)
    training = sorted(m for m in seen if m == f"{NAME}.train" or m.startswith(f"{NAME}.train."))
    assert not training, "evaluate imports training code: " + "; ".join(
        chain(seen, m) for m in training
    )
    assert f"{NAME}.checkpoint" in seen and f"{NAME}.model" in seen  # the walk does reach


def test_the_walk_finds_imports_inside_functions():
    # train.pipeline imports the loop at module level; the walk must see train.* from there
    assert f"{NAME}.train.loop" in reachable({f"{NAME}.train.pipeline"})
