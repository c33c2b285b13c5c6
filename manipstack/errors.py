"""The project's own error types for problems a user can fix: bad input, missing files, unreachable robots.

The command line (``manipstack ...``) prints any :class:`ManipstackError` as one line naming the problem and exits
with status 2 (``--debug`` or ``MANIPSTACK_DEBUG=1`` shows the traceback); every other exception is a bug and keeps
its traceback. They subclass the built-in types callers already catch (``ValueError``, ``FileNotFoundError``).
"""

from __future__ import annotations


class ManipstackError(Exception):
    """A problem the user can fix (the message says what and where); base of the project's error types."""


class InputError(ManipstackError, ValueError):
    """Malformed user input: a config field, a file's contents, an action outside the space, a NaN."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the user named (checkpoint, dataset, keys, objects, scene) does not exist."""


class OutputExistsError(InputError, FileExistsError):
    """An output the command would overwrite already exists (and the user did not ask to replace it)."""
