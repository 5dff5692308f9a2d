"""The errors a user's input causes, told apart from bugs.

Each names what is wrong and how to fix it; the command line prints its
message alone (no traceback) and exits with status 2. They subclass the
built-in types code already catches (ValueError, FileNotFoundError).
"""

from __future__ import annotations


class UserError(Exception):
    """Base of the errors caused by the user's input, not by a bug."""


class ConfigError(UserError, ValueError):
    """A config field is missing, misspelt or out of range."""


class WorkdirError(UserError, ValueError):
    """The workdir holds a run of another config."""


class CheckpointError(UserError, ValueError):
    """A checkpoint cannot be restored (corrupt, or of another model)."""


class DataError(UserError, FileNotFoundError):
    """A dataset or file the config names is missing."""
