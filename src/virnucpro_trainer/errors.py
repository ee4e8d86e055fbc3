"""The exceptions that end a run the way a user expects (see entry.run_task)."""

import signal


class UserError(Exception):
    """A problem with the user's input (bad path, bad file, bad value): printed as one message
    naming the culprit, without a traceback, with exit status 1."""


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; raised where stopping is safe (training: between batches)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Pruned(Exception):
    """The search's pruner stopped this trial after an epoch (search/trial.py): not a
    failure. The search sweeper marks the trial pruned; the run keeps what it wrote."""
