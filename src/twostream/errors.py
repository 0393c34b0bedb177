"""Errors a user can act on. Their message names the file and the problem."""


class InputError(ValueError):
    """Bad input data (a corrupt video, a malformed shard, a wrong dtype...)."""
