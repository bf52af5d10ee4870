"""Imports point one way: cli/, flows/ → pipelines/ → vibra/; the library never prints or exits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("folder, forbidden", [
    ("vibra", {"typer", "prefect", "click", "vibra_cli", "vibra_pipelines", "vibra_flows", "cli", "pipelines", "flows"}),
    ("pipelines", {"typer", "prefect", "click", "vibra_cli", "vibra_flows", "cli", "flows"}),
    ("cli", {"prefect", "vibra_flows", "flows", "pipelines"}),
])
def test_imports_point_one_way(folder, forbidden):
    bad = {path: sorted(names & forbidden) for path, names in _imports(folder).items() if names & forbidden}
    assert bad == {}


def test_library_never_prints_or_exits():
    offenders = []
    for path in (ROOT / "vibra").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if name in {"print", "exit"} or (isinstance(f, ast.Attribute) and name == "exit"):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_wheel_puts_no_generic_top_level_modules(tmp_path):
    """Build the real wheel and list its top-level names: cli/, pipelines/, flows/ ship prefixed."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("vibra-*.whl")
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    top = {t for t in top if not t.endswith(".dist-info")}
    assert top == {"vibra", "vibra_cli", "vibra_pipelines", "vibra_flows"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "vibra_pipelines/ingest/__init__.py" in names and "vibra_cli/main.py" in names
    assert "vibra_cli/commands/ingest.py" in names  # the command modules ship too


# A stage imports only the library and ``runs``: what two stages share lives in ``vibra/`` (or
# ``vibra/storage/``). ``demo`` composes the stages as a flow does, so it is the one exception. A module
# ``<stage>_<part>.py`` is part of its stage.
STAGE_EXCEPTIONS = {"demo"}


def _stage_imports() -> dict[str, set[str]]:
    found = {}
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        module = path.relative_to(ROOT / "pipelines").with_suffix("").parts
        stage = module[0].split("_", 1)[0]  # a package (ingest/) or <stage>_<part>.py is part of its stage
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                if parts[0] == "vibra_pipelines":
                    names |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == len(module):  # relative, up to pipelines/
                names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name.split(".")[1] for a in node.names
                          if a.name.startswith("vibra_pipelines.")}
        found[stage] = found.get(stage, set()) | (names - {stage, "runs", "__init__"})
    return found


def test_stages_import_no_other_stage():
    bad = {stage: sorted(names) for stage, names in _stage_imports().items()
           if names and stage not in STAGE_EXCEPTIONS}
    assert bad == {}
