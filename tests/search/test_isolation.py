"""The search stays in its package: training, evaluation, reports, statistics and data import
nothing of it nor Optuna (train.py hands the training loop the trial's reporter), and the search
changes no warning filter of the whole process (only around the calls that warn)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import virnucpro_trainer

PACKAGE_DIR = Path(virnucpro_trainer.__file__).parent
BELOW_THE_SEARCH = ("train", "evaluate", "reports", "stats", "data")
FILTERS = ("filterwarnings", "simplefilter")


def imported_names(path: Path) -> list[str]:
    """Every module `path` imports, anywhere in the file (inside functions too)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


@pytest.mark.parametrize("package", BELOW_THE_SEARCH)
def test_the_packages_below_the_search_import_nothing_of_it(package):
    found = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in sorted((PACKAGE_DIR / package).glob("*.py"))
        for name in imported_names(path)
        if name.split(".")[0] == "optuna" or name.startswith("virnucpro_trainer.search")
    ]
    assert not found, "; ".join(found)


def warning_filters_outside_catch_warnings(tree: ast.AST) -> list[int]:
    """Lines that change a warning filter outside a `with warnings.catch_warnings():` block."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(
            "catch_warnings" in ast.unparse(item.context_expr) for item in node.items
        ):
            inside |= {id(n) for n in ast.walk(node)}
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in FILTERS
        and id(node) not in inside
    ]


def test_the_search_sets_no_process_wide_warning_filter():
    plugin = PACKAGE_DIR.parent / "hydra_plugins" / "virnucpro_sweeper"
    files = sorted((PACKAGE_DIR / "search").glob("*.py")) + sorted(plugin.glob("*.py"))
    assert len(files) >= 10
    found = {
        path.name: lines
        for path in files
        if (lines := warning_filters_outside_catch_warnings(ast.parse(path.read_text())))
    }
    assert not found, f"process-wide warning filters (file: lines): {found}"
    assert warning_filters_outside_catch_warnings(ast.parse("warnings.simplefilter('x')")) == [1]
