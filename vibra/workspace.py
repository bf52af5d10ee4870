"""Workspace: a folder holding ``vibra.toml`` plus ``data/``, ``artifacts/``, ``reports/``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vibra.errors import WorkspaceError

CONFIG_NAME = "vibra.toml"

DEFAULT_TOML = """\
# vibra workspace settings. Precedence: CLI option > VIBRA_* environment > this file > defaults.
# Every setting is listed in docs/reference/settings.md. Uncomment to change.

[ingest]
# max_concurrent_files = 2
# sample_rate_hz = 0          # default when neither file nor equipment gives one (0 = none)
# chunk_rows = 262144
# lock_timeout_s = 3600

[features]
# frame_length = 4096         # window length, samples
# hop_length = 4096           # samples between window starts
# batch_windows = 256
# bands_hz = [[0, 500], [500, 1000], [1000, 2000], [2000, 4000], [4000, 8000]]

[query]
# max_points = 5000

# One section per machine; `vibra synth` appends the sections of the machines it makes.
# [equipment.pump-01]
# sample_rate_hz = 12800
# units = "g"
# rpm = 1780
# channels = ["time", "x", "y"]   # column names for headerless CSV ("-" skips a column)
# bearing = { n_elements = 9, ball_diameter_mm = 7.94, pitch_diameter_mm = 39.04, contact_angle_deg = 0 }
# iso_group = 2
# iso_support = "flexible"   # group 2 (15–300 kW) flexible: A/B 2.3, B/C 4.5, C/D 7.1 mm/s
"""


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
        ws.config_path.write_text(DEFAULT_TOML)
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
