"""Stopping a run cleanly: SIGINT and SIGTERM only set a flag, which the loop checks per batch."""

from __future__ import annotations

import signal

from virnucpro_trainer.errors import Interrupted


class StopSignals:
    """While active, SIGINT and SIGTERM only set a flag that the training loop checks per batch."""

    def __init__(self):
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def check(self) -> None:
        if self.signum is not None:
            raise Interrupted(self.signum)
