"""The bundled demo data set: layout, determinism, reuse and refusal to overwrite."""

from __future__ import annotations

import json
import re

import pytest
import torch

from virnucpro_trainer.config.schema import SyntheticConfig
from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.synthetic import ensure_synthetic
from virnucpro_trainer.errors import UserError

from helpers import HOST_DIR, VIRAL_DIR

WIDTH = 16
CFG = SyntheticConfig(files_per_class=3, rows_per_file=30, chunks_per_genome=2)
ID_PATTERN = re.compile(r"^(NC_9|NZ_CP)[01]\d{5}\.1_chunk_(\d+)([FR][123])$")


def load(root) -> dict[str, dict]:
    return {
        p.relative_to(root).as_posix(): torch.load(p, weights_only=True)
        for p in sorted(root.glob("*/*.pt"))
    }


def test_makes_the_merged_layout(tmp_path):
    root = tmp_path / "demo"
    ensure_synthetic(root, CFG, WIDTH)

    expected = {f"{d}/output_{i}_merged.pt" for d in (VIRAL_DIR, HOST_DIR) for i in range(3)}
    assert set(load(root)) == expected
    assert (root / "synthetic.json").is_file()
    assert not list(tmp_path.glob(".demo.tmp-*"))
    files = [read_merged(s, WIDTH) for s in find_files(root, "*_merged.pt", "viral")]
    assert len(files) == 6
    for f in files:
        assert f.rows == 30
        assert f.data.dtype == torch.float32
        assert f.ids is not None and len(f.ids) == 30
        assert torch.isfinite(f.data).all()


def test_ids_name_genome_chunk_and_frame(tmp_path):
    ensure_synthetic(tmp_path / "demo", CFG, WIDTH)
    all_ids = []
    for name, content in load(tmp_path / "demo").items():
        viral = name.startswith(VIRAL_DIR)
        assert content["labels"] == [int(viral)]
        for row_id in content["ids"]:
            match = ID_PATTERN.match(row_id)
            assert match, row_id
            assert match.group(1) == ("NC_9" if viral else "NZ_CP")
            assert int(match.group(2)) < CFG.chunks_per_genome
        all_ids += content["ids"]
    assert len(set(all_ids)) == len(all_ids)


def test_deterministic(tmp_path):
    ensure_synthetic(tmp_path / "a", CFG, WIDTH)
    ensure_synthetic(tmp_path / "b", CFG, WIDTH)
    a, b = load(tmp_path / "a"), load(tmp_path / "b")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name]["data"], b[name]["data"]), name
        assert a[name]["ids"] == b[name]["ids"]
    ensure_synthetic(tmp_path / "c", SyntheticConfig(**{**vars(CFG), "seed": 1}), WIDTH)
    c = load(tmp_path / "c")
    assert not torch.equal(
        a[f"{VIRAL_DIR}/output_0_merged.pt"]["data"], c[f"{VIRAL_DIR}/output_0_merged.pt"]["data"]
    )


def test_second_call_reuses_the_data(tmp_path):
    root = tmp_path / "demo"
    ensure_synthetic(root, CFG, WIDTH)
    paths = sorted(p for p in root.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths}

    ensure_synthetic(root, CFG, WIDTH)

    assert sorted(p for p in root.rglob("*") if p.is_file()) == paths
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in paths} == before


@pytest.mark.parametrize(
    ("cfg", "width"),
    [
        (SyntheticConfig(files_per_class=4, rows_per_file=30, chunks_per_genome=2), WIDTH),
        (SyntheticConfig(files_per_class=3, rows_per_file=30, chunks_per_genome=2, seed=3), WIDTH),
        (CFG, WIDTH + 1),
    ],
)
def test_other_settings_on_the_same_root_are_refused(tmp_path, cfg, width):
    root = tmp_path / "demo"
    ensure_synthetic(root, CFG, WIDTH)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}

    with pytest.raises(UserError) as err:
        ensure_synthetic(root, cfg, width)

    assert str(root) in str(err.value)
    assert "other settings" in str(err.value)
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


def test_refuses_a_non_empty_foreign_directory(tmp_path):
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("my data")

    with pytest.raises(UserError) as err:
        ensure_synthetic(root, CFG, WIDTH)

    assert str(root) in str(err.value)
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    assert (root / "notes.txt").read_text() == "my data"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_fills_an_existing_empty_directory(tmp_path):
    root = tmp_path / "demo"
    root.mkdir()
    ensure_synthetic(root, CFG, WIDTH)
    settings = json.loads((root / "synthetic.json").read_text())
    assert settings["width"] == WIDTH
    assert settings["files_per_class"] == 3
    assert len(load(root)) == 6
