"""One exception family. Messages name the file or value and the fix.

Only the CLI turns these into exit codes: ``InputError``/``ConfigError`` and
failed work → 1, ``NotReadyError`` → 3. Anything else keeps its traceback.
"""


class VibraError(Exception):
    """Base of every expected vibra failure."""

    exit_code = 1


class InputError(VibraError):
    """A file or value given by the user cannot be used."""


class ConfigError(VibraError):
    """A setting is missing, malformed or out of range."""


class WorkspaceError(VibraError):
    """No workspace could be found or created."""


class BusyError(VibraError):
    """Another process holds a resource this command needs."""


class NotReadyError(VibraError):
    """The data is not ready for the requested step."""

    exit_code = 3
