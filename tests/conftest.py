"""Fixtures only; what tests share lives in the helpers package (tests/helpers/).

Tests that start a process (train.py through `run_train` or `start_train`, or any other
subprocess) carry the `e2e` marker and live in tests/e2e/ (the other folders mirror the source
packages). `pytest -n auto -m "not e2e and not stat and not slow"` is the fast loop (`stat`: the
statistical simulations; `slow`: whole training or evaluation pipelines run in-process): a test
there whose own code starts a process fails at once, naming itself.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

from virnucpro_trainer.config.schema import SyntheticConfig
from virnucpro_trainer.data.synthetic import ensure_synthetic

from helpers import TINY, compose_train

TESTS = Path(__file__).resolve().parent

# Hypothesis profiles: "ci" runs each fuzz test's full count of examples, thousands of files in
# all; "fast" a tenth of them (data/test_reader_fuzz.py scales its counts by max_examples / 100).
settings.register_profile("ci", max_examples=100)
settings.register_profile("fast", max_examples=10)


def pytest_configure(config):
    """Hypothesis: profile "ci", or "fast" when the run leaves out the e2e tests (the fast loop);
    HYPOTHESIS_PROFILE=<name> or --hypothesis-profile=<name> decides instead.

    SIGINT: a shell starts a background job (`pytest ... &`) with SIGINT ignored, and every
    train.py a test starts would inherit that and run on through the SIGINT a test sends it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if config.getoption("hypothesis_profile", None):
        return
    fast_loop = re.search(r"\bnot\s+e2e\b", config.getoption("markexpr", "") or "")
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fast" if fast_loop else "ci"))


def pytest_collection_modifyitems(items):
    """Every `e2e` test in tests/e2e/, and only those: the folder says what the marker does."""
    misplaced = [
        item.nodeid
        for item in items
        if (item.get_closest_marker("e2e") is not None) != item.path.is_relative_to(TESTS / "e2e")
    ]
    if misplaced:
        raise pytest.UsageError(
            "e2e tests belong in tests/e2e/ and tests there need the e2e marker: "
            + ", ".join(misplaced)
        )


@pytest.fixture(autouse=True)
def no_process_outside_e2e(request, monkeypatch):
    """A test without the `e2e` marker may not start a process from the tests' code (helpers/
    included). Libraries may still run a helper program of their own, e.g. matplotlib's fc-list
    when it builds its font cache."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    test = request.node.nodeid

    class Guarded(subprocess.Popen):
        def __init__(self, args, *more, **options):
            caller = sys._getframe(1)
            while caller.f_code.co_filename == subprocess.__file__:  # subprocess.run, ...
                caller = caller.f_back
            if Path(caller.f_code.co_filename).resolve().is_relative_to(TESTS):
                raise AssertionError(
                    f"{test} starts a process ({args!r}): mark it @pytest.mark.e2e, "
                    "or call helpers.train_in_process instead of run_train"
                )
            super().__init__(args, *more, **options)

    monkeypatch.setattr(subprocess, "Popen", Guarded)


@pytest.fixture(scope="session")
def tiny_data_once(tmp_path_factory) -> Path:
    """TINY's demo data set, generated once per session as a TINY run would generate it."""
    cfg = compose_train(*TINY)
    root = tmp_path_factory.mktemp("tiny") / "data_merge"
    width = cfg.data.dna_dim + cfg.data.protein_dim
    ensure_synthetic(root, SyntheticConfig(**cfg.data.synthetic), width)
    return root


@pytest.fixture
def tiny_data(tmp_path, tiny_data_once) -> Path:
    """TINY's demo data already in place under tmp_path (a TINY run there reuses it instead of
    generating it: about a second saved per test); returns its root."""
    root = tmp_path / compose_train(*TINY).data.root
    shutil.copytree(tiny_data_once, root)
    return root


@pytest.fixture
def no_figures(monkeypatch):
    """Matplotlib lays out and saves no figure (Figure.tight_layout and savefig do nothing): the
    run report's four PNGs take about half of a tiny run's time. For tests that do not look at
    them; the demo run's test (train/test_pipeline.py) and every e2e run draw them."""
    from matplotlib.figure import Figure

    monkeypatch.setattr(Figure, "tight_layout", lambda self, *args, **kwargs: None)
    monkeypatch.setattr(Figure, "savefig", lambda self, *args, **kwargs: None)
