"""Workspace: a folder holding ``vibra.toml`` plus ``data/``, ``artifacts/``, ``reports/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vibra.errors import WorkspaceError

CONFIG_NAME = "vibra.toml"


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace. Creating the object touches no files."""

    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def lake(self) -> Path:
        return self.data / "lake"

    @property
    def catalog_path(self) -> Path:
        return self.data / "catalog.duckdb"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def metrics_path(self) -> Path:
        return self.artifacts / "metrics" / "vibra.prom"

    def table(self, name: str) -> Path:
        return self.lake / name

    def ensure(self) -> "Workspace":
        for path in (self.lake, self.artifacts / "models", self.artifacts / "metrics", self.reports):
            path.mkdir(parents=True, exist_ok=True)
        return self


def init_workspace(directory: Path) -> tuple[Workspace, bool]:
    """Create a workspace in ``directory``; returns it and whether ``vibra.toml`` was new.

    An existing ``vibra.toml`` is never overwritten.
    """
    directory = directory.expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise WorkspaceError(f"{directory}: exists and is not a folder; choose another path for `vibra init`")
    directory.mkdir(parents=True, exist_ok=True)
    ws = Workspace(directory)
    created = not ws.config_path.exists()
    if created:
        from vibra.settings import toml_template

        ws.config_path.write_text(toml_template())
    ws.ensure()
    return ws, created


def find_workspace(home: str | Path | None = None, env_home: str | None = None,
                   start: Path | None = None) -> Workspace:
    """Locate the workspace: ``home`` (``--home``), then ``env_home`` (``VIBRA_HOME``),
    then the nearest folder upward from ``start`` holding ``vibra.toml``."""
    for value, origin in ((home, "--home"), (env_home, "VIBRA_HOME")):
        if value:
            root = Path(value).expanduser().resolve()
            if not (root / CONFIG_NAME).is_file():
                raise WorkspaceError(f"{origin} {root}: no {CONFIG_NAME} there; run `vibra init {root}` first")
            return _opened(Workspace(root))
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return _opened(Workspace(folder))
    raise WorkspaceError(f"no {CONFIG_NAME} in {here} or any folder above it; run `vibra init DIR`, "
                         "or pass --home / set VIBRA_HOME")


def _opened(ws: Workspace) -> Workspace:
    """A found workspace, its artifact pointers migrated to the current format once (see ``artifacts.migrate``)."""
    from vibra.storage import artifacts

    from vibra.errors import VibraError

    try:
        artifacts.ensure_layout(ws.artifacts)
    except (OSError, VibraError):
        pass  # read-only, or damaged: readers meet the file and name `vibra migrate` / `vibra doctor --repair`
    return ws
