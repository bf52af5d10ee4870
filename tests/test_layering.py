"""Imports point one way: cli/, flows/ → pipelines/ → vibra/; the library never prints or exits."""

from __future__ import annotations

import ast
import re
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


# -- the ledger is the stages' one door to the catalog ---------------------------------------------------

SQL = re.compile(r"\b(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+(TABLE|VIEW))")
# ``vibra sql`` is the one stage whose job is SQL. doctor.py is being reworked by the lake helper (issue 30);
# its ledger queries move to vibra.storage.ledger after that (the lead tightens this list).
SQL_STAGES = {"sql.py"}  # the `vibra sql` stage runs the user's statement


def _strings(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
        elif isinstance(node, ast.JoinedStr):
            yield node.lineno, "".join(v.value for v in node.values
                                       if isinstance(v, ast.Constant) and isinstance(v.value, str))


def test_no_sql_in_stages():
    """Catalog queries live in ``vibra.storage.ledger``, lake queries in ``vibra.storage.tables``."""
    found = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        if path.name in SQL_STAGES:
            continue
        tree = ast.parse(path.read_text(), str(path))
        found += [f"{path.relative_to(ROOT)}:{line}" for line, text in _strings(tree) if SQL.search(text)]
        found += [f"{path.relative_to(ROOT)}: imports the catalog" for names in [_imported(tree)]
                  if "vibra.storage.catalog" in names]
    assert found == []


def _imported(tree: ast.AST) -> set[str]:
    """Every module named by an import in ``tree`` (``from a import b`` names ``a`` and ``a.b``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


# -- the library's own graph ------------------------------------------------------------------------------

def _library() -> dict[str, Path]:
    mods = {}
    for path in (ROOT / "vibra").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _library_graph() -> dict[str, set[str]]:
    """Module → the library modules it imports, at the top or inside a function (a lazy import is still a
    dependency)."""
    mods = _library()

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                targets |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[mod] = {r for t in targets if t.startswith("vibra") and (r := resolve(t)) and r != mod}
    return graph


# Cycles not yet broken, each owned by a helper of issue 30 who is changing those files now.
KNOWN_CYCLES: list[set[str]] = []


def test_no_import_cycles_in_the_library():
    graph = _library_graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert [c for c in cycles if c not in KNOWN_CYCLES] == []


def test_no_private_name_imported_across_packages():
    """A ``_private`` module or name is its package's own: another package goes through a public name."""
    bad = []
    for folder in ("vibra", "pipelines", "cli", "flows", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            here = ".".join(path.relative_to(ROOT).parts[:2])
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not (isinstance(node, ast.ImportFrom) and node.module and node.level == 0):
                    continue
                names = node.module.split(".") + [a.name for a in node.names]
                if node.module.startswith("vibra") and any(n.startswith("_") and not n.startswith("__") for n in names):
                    if ".".join(node.module.split(".")[:2]) != here.removesuffix(".py"):
                        bad.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}")
    assert bad == []


# Only the ledger queries the catalog: its SQL lives in ledger.py; catalog.py is the file (connections, the one
# write of ledger rows), migrations.py its schema. ``catalog.frame`` over an in-memory DuckDB is no catalog access.
CATALOG_OWNERS = {"vibra/storage/ledger.py", "vibra/storage/catalog.py", "vibra/storage/migrations.py"}
CATALOG_ACCESS = {"connect", "query", "write_rows", "ensure", "migrate", "CURRENT"}


def test_only_the_ledger_queries_the_catalog():
    bad = []
    for path in sorted((ROOT / "vibra").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel in CATALOG_OWNERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "catalog" \
                    and node.attr in CATALOG_ACCESS:
                bad.append(f"{rel}:{node.lineno} catalog.{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module == "vibra.storage.catalog" \
                    and {a.name for a in node.names} & CATALOG_ACCESS:
                bad.append(f"{rel}:{node.lineno} imports {node.module}")
    assert bad == []


# The storage modules the rest of the library may use: the lake's tables, the ledger, versioned artifacts,
# labels read back and content hashes. The Delta files, the catalog file, locks, staging, compaction and
# object storage are storage's own.
STORAGE_ENTRY_POINTS = {"artifacts", "hashing", "labels", "ledger", "tables"}
# Known exceptions, pinned so the list cannot grow: helper "lake" owns faults.py (issue 30).
STORAGE_EXCEPTIONS = {("vibra/ingest/faults.py", "vibra.storage.remote")}


def test_library_reaches_storage_only_through_its_entry_points():
    bad = set()
    for path in sorted((ROOT / "vibra").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if rel.startswith("vibra/storage/"):
            continue
        for name in _imported(ast.parse(path.read_text(), str(path))):
            parts = name.split(".")
            if parts[:2] == ["vibra", "storage"] and len(parts) > 2 and parts[2] not in STORAGE_ENTRY_POINTS:
                bad.add((rel, ".".join(parts[:3])))
    assert bad - STORAGE_EXCEPTIONS == set()


# -- stages compose, the library computes --------------------------------------------------------------

MAX_STAGE_FUNCTION_LINES = 60


def test_no_stage_function_over_60_lines():
    long = []
    for path in sorted((ROOT / "pipelines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                where = f"{path.relative_to(ROOT)}:{node.name}"
                if node.end_lineno - node.lineno + 1 > MAX_STAGE_FUNCTION_LINES:
                    long.append(f"{where} ({node.end_lineno - node.lineno + 1} lines)")
    assert long == []


def test_benchmarks_do_not_import_the_tests():
    """The benchmarks stand alone (the real data's location is benchmarks/real.py); the tests may reuse them."""
    bad = {path: sorted(names & {"conftest", "tests"}) for path, names in _imports("benchmarks").items()
           if names & {"conftest", "tests"}}
    text = {str(p.relative_to(ROOT)) for p in (ROOT / "benchmarks").glob("*.py") if '/ "tests"' in p.read_text()}
    assert bad == {} and text == set()
