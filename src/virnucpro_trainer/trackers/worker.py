"""The chosen trackers behind one background thread, so that training never waits for them.

The thread starts every tracker (imports, connecting, creating the run, logging the parameters)
while the data is read; training waits for that (`wait_ready`), so a tracker that cannot start
stops the run before its first epoch with one message. After that the training thread only puts
records on a queue; the thread sends what has gathered at most every FLUSH_SECONDS. A tracker that
fails later is reported in one warning and left out for the rest of the run: the run and its own
files never depend on a tracker."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from pathlib import Path

from virnucpro_trainer.errors import Interrupted, UserError
from virnucpro_trainer.trackers.content import (
    RunIdentity,
    artifact_files,
    final_metrics,
    read_results,
)

log = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0  # epochs gathered meanwhile go together (a slow epoch goes at once)
CLOSE_TIMEOUT_S = 300.0  # the most the end of a run waits for the trackers to finish sending


class Trackers:
    """Start with the trackers, the run's identity and parameters; `with` closes them with the
    run's outcome (FINISHED, KILLED after an interrupt, FAILED after an error)."""

    def __init__(self, trackers: list, identity: RunIdentity | None = None, params=None):
        self.names = [t.name for t in trackers]
        self._live = {t.name: t for t in trackers}
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._urgent = threading.Event()
        self._ready = threading.Event()
        self._problems: list[str] = []
        self.waited = [0.0, 0.0]  # seconds the run waited for the trackers: at the start, end
        self.cpu_seconds = 0.0  # CPU time of the trackers' thread
        self._thread = threading.Thread(
            target=self._work, args=(identity, params), name="trackers", daemon=True
        )
        if trackers:
            self._thread.start()
        else:
            self._ready.set()

    def __enter__(self) -> Trackers:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        interrupted = kind is not None and issubclass(kind, Interrupted | KeyboardInterrupt)
        self.close("FINISHED" if kind is None else "KILLED" if interrupted else "FAILED")

    def wait_ready(self) -> None:
        """Wait until every tracker has started; a UserError naming those that could not."""
        start = time.perf_counter()
        self._ready.wait()
        self.waited[0] += time.perf_counter() - start
        if self._problems:
            raise UserError("cannot start the trackers:\n  " + "\n  ".join(self._problems))

    def log_epoch(self, record: dict) -> None:
        if self.names:
            self._queue.put(("epochs", dict(record)))

    def log_results(self, run_dir: Path, checkpoint_name: str, log_model: bool) -> None:
        """test_metrics.json's numbers and the run's report, pictures and results files."""
        if self.names:
            self._queue.put(("results", (run_dir, checkpoint_name, log_model)))
            self._urgent.set()

    def close(self, status: str) -> None:
        if not self._thread.is_alive():
            return
        self._queue.put(("close", status))
        self._urgent.set()
        start = time.perf_counter()
        self._thread.join(CLOSE_TIMEOUT_S)
        self.waited[1] += time.perf_counter() - start
        if self._thread.is_alive():
            log.warning("the trackers did not finish within %.0f s; leaving them", CLOSE_TIMEOUT_S)
        log.info(
            "trackers %s: the run waited %.2f s for them at the start and %.2f s at the end; "
            "their thread used %.2f s of CPU",
            ",".join(self.names),
            *self.waited,
            self.cpu_seconds,
        )

    def _work(self, identity: RunIdentity, params: dict) -> None:
        for name, tracker in self._live.items():
            try:
                tracker.start(identity, params)
            except Exception as err:
                self._problems.append(f"logger={name} could not start ({tracker.setting}): {err}")
        if self._problems:
            for tracker in self._live.values():
                with contextlib.suppress(Exception):
                    tracker.close("FAILED")
            self._live.clear()
        self._ready.set()
        while self._live:
            items = [self._queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    items.append(self._queue.get_nowait())
            if epochs := [payload for kind, payload in items if kind == "epochs"]:
                self._each("log_epochs", epochs)
            for kind, payload in items:
                if kind == "results":
                    self._send_results(*payload)
                elif kind == "close":
                    self._each("close", payload)
                    self.cpu_seconds = time.thread_time()
                    return
            self._urgent.wait(FLUSH_SECONDS)

    def _send_results(self, run_dir: Path, checkpoint_name: str, log_model: bool) -> None:
        try:
            metrics = final_metrics(read_results(run_dir))
            files = artifact_files(run_dir, checkpoint_name, log_model)
        except (OSError, ValueError) as err:
            log.warning("the trackers get no final results: %s", err)
            return
        self._each("log_results", metrics)
        self._each("log_files", run_dir, files)

    def _each(self, method: str, *args) -> None:
        """Call `method` of every live tracker; one that fails is warned about and dropped."""
        for name, tracker in list(self._live.items()):
            try:
                getattr(tracker, method)(*args)
            except Exception as err:
                del self._live[name]
                log.warning(
                    "logger=%s failed (%s: %s) and is left out for the rest of this run; the "
                    "run goes on, and its own files are written as usual",
                    name,
                    type(err).__name__,
                    err,
                )
                if method != "close":
                    with contextlib.suppress(Exception):
                        tracker.close("FAILED")
