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


class StoreError(VibraError):
    """The object store holding the lake (``[lake] uri``) cannot be reached or refuses a request."""


class NotReadyError(VibraError):
    """The data is not ready for the requested step."""

    exit_code = 3


class CorruptError(VibraError):
    """A stored file is damaged (truncated, not what it claims to be, changed after it was written).

    ``path`` is the damaged file; the message names it and says to run ``vibra doctor --repair``,
    which reports and repairs what is safe (quarantine, repoint) — so no command ever reads a
    damaged file as if it were missing or empty.
    """

    def __init__(self, path, problem: str, fix: str = "run `vibra doctor --repair`"):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}; {fix}")


class CorruptArtifactError(CorruptError):
    """A manifest, ``latest.json`` pointer or artifact file that does not read or does not verify."""


class LakeCorruptError(CorruptError):
    """A lake Parquet file that cannot be read (e.g. truncated: no footer)."""
