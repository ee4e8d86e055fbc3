"""The package graph runs one way (docs/architecture.md): each part of virnucpro_trainer imports,
anywhere in its files (module level or inside functions), only parts of lower layers. So stats/
imports nothing of the project, evaluate/ nothing of train/ (training uses evaluation, never the
reverse), reports/ nothing of evaluate/ or train/, and train/ nothing of the search."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import virnucpro_trainer

PACKAGE_DIR = Path(virnucpro_trainer.__file__).parent
NAME = "virnucpro_trainer"

# Lowest first. A part may import the parts of lower layers only: never its own layer's others,
# never a higher one. The same list, drawn, is in docs/architecture.md.
LAYERS = [
    ("errors", "stats"),  # stats: plain arrays in, plain values out
    ("atomic", "torch_files", "runtime", "run_dir"),
    ("config",),
    ("data",),
    ("levels", "model"),
    ("checkpoint", "trackers"),
    ("ensemble", "entry", "reports"),
    ("evaluate",),
    ("train",),
    ("sweeps",),  # after-multirun summaries
    ("search",),  # the hyperparameter search: launches training runs
]
RANK = {part: i for i, layer in enumerate(LAYERS) for part in layer}


def part_of(path: Path) -> str:
    return path.relative_to(PACKAGE_DIR).parts[0].removesuffix(".py")


def imports_of(path: Path) -> set[str]:
    """The project parts a file imports (the package's own __version__ aside)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == NAME and len(parts) > 1 and parts[1] != "__version__":
                found.add(parts[1])
    return found


def edges() -> list[tuple[str, str, Path]]:
    out = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path.name == "__init__.py" and path.parent == PACKAGE_DIR:
            continue
        source = part_of(path)
        out += [(source, target, path) for target in imports_of(path) if target != source]
    return out


def test_every_part_has_a_layer():
    parts = {part_of(p) for p in PACKAGE_DIR.rglob("*.py") if p.parent != PACKAGE_DIR}
    parts |= {p.stem for p in PACKAGE_DIR.glob("*.py") if p.stem != "__init__"}
    assert parts - set(RANK) == set(), "add the new part to LAYERS (and docs/architecture.md)"


def test_imports_run_down_the_layers_only():
    wrong = [
        f"{path.relative_to(PACKAGE_DIR)}: {source} (layer {RANK[source]}) imports {target} "
        f"(layer {RANK[target]})"
        for source, target, path in edges()
        if RANK[target] >= RANK[source]
    ]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("part", "never"),
    [
        ("stats", set(RANK) - {"stats"}),
        ("evaluate", {"train", "search", "sweeps"}),
        ("reports", {"evaluate", "train", "search", "sweeps"}),
        ("train", {"search", "sweeps"}),
    ],
)
def test_the_rules_the_issue_names(part, never):
    found = {target for source, target, _ in edges() if source == part}
    assert not found & never


def test_the_walk_sees_imports_inside_functions(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(f"def f():\n    from {NAME}.train.loop import fit\n    import {NAME}.search\n")
    assert imports_of(path) == {"train", "search"}


def test_training_imports_no_optuna():
    for path in (PACKAGE_DIR / "train").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] == "optuna" for n in names), path
