"""The feature store shared by processes: concurrent builders make one store, and a running job
keeps its store while another run rebuilds it (in one process: data/test_store.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from virnucpro_trainer.data.files import find_files
from virnucpro_trainer.data.merged import read_merged
from virnucpro_trainer.data.table import build_table

from helpers import TINY, epochs_saved, make_dataset, run_train, start_train, wait_for


def entries(cache):
    return sorted(p for p in cache.iterdir() if not p.name.startswith("."))


BUILDER = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    from virnucpro_trainer.data.files import UNLABELLED, find_files
    from virnucpro_trainer.data.store import open_store
    root, cache = Path(sys.argv[1]), Path(sys.argv[2])
    table = open_store(find_files(root, "*_merged.pt", "viral"), root, cache, int(sys.argv[3]),
                       "float32")
    print(json.dumps(float(table.features.double().sum())))
    """
)


@pytest.mark.e2e
def test_concurrent_builders_make_one_store(tmp_path):
    root, cache = tmp_path / "data_merge", tmp_path / "cache"
    make_dataset(root, files_per_class=6, rows=2000, width=64)
    cmd = [sys.executable, "-c", BUILDER, str(root), str(cache), "64"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert len({json.loads(o) for o in outputs}) == 1
    (entry,) = entries(cache)
    assert sorted(p.name for p in cache.iterdir() if p.is_dir()) == [entry.name]
    expected = build_table(
        [read_merged(s, 64) for s in find_files(root, "*_merged.pt", "viral")]
    ).features
    assert json.loads(outputs[0]) == pytest.approx(float(expected.double().sum()))


@pytest.mark.e2e
def test_a_running_job_keeps_its_store_while_another_run_rebuilds_it(tmp_path):
    # The job is paused (SIGSTOP) after its first epoch, so the other run certainly overlaps it.
    first = start_train(tmp_path, *TINY, "epochs=3", "hydra.run.dir=first")
    wait_for(lambda: epochs_saved(tmp_path / "first") >= 1, "the first epoch")
    first.send_signal(signal.SIGSTOP)
    try:
        cache = tmp_path / "data/synthetic/feature_cache"
        (old,) = entries(cache)
        path = next((tmp_path / "data/synthetic/data_merge").glob("*/*_merged.pt"))
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        other = run_train(tmp_path, *TINY, "debug=fast", "hydra.run.dir=other")
        assert "while a running job uses it" in other.stdout
        assert old in entries(cache) and len(entries(cache)) == 2
    finally:
        first.send_signal(signal.SIGCONT)
    out, _ = first.communicate(timeout=300)
    assert first.returncode == 0, out
    for name in ("test_metrics.json", "test_predictions.tsv", "model_fastesm650.pth"):
        assert (tmp_path / "first" / name).is_file(), name
    # the next run, with nobody holding the outdated store, removes it
    later = run_train(tmp_path, *TINY, "debug=fast", "hydra.run.dir=later")
    assert f"removing the outdated feature store {old}" in later.stdout
    assert old not in entries(cache) and len(entries(cache)) == 1
