"""The one exception type for problems a user can cause and fix (bad path, bad file, bad value)."""


class UserError(Exception):
    """A problem with the user's input; train.py prints its message without a traceback."""
