"""Errors that end a run with one line for the user. Bottom floor: imports nothing."""


class StageError(RuntimeError):
    """A run that cannot go on (diverged, nothing left to train, refused set-up): the CLI prints
    the message as one line and exits 1; checkpoints already written stay as they were."""
