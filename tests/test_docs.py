"""The docs are tested: every ```bash block of README.md and docs/ runs (the sqlite-utils habit), the
generated reference matches the code, and the README stays short.

Blocks of one page run in order in a fresh temporary folder, with this environment's `vibra` first on
PATH; the working directory and exported variables carry over from one block to the next. A block
passes when it exits 0; a command that must fail declares its exit code in a trailing comment
(`vibra readiness   # exit: 3`), and the block fails if it exits otherwise. A block preceded by
`<!-- no-test -->` is not run; one preceded by `<!-- requires: vibra CMD --option -->` runs once
`vibra CMD --help` lists the option (until then it is skipped with a warning).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!--\s*(?P<marker>[^>]*?)\s*-->\s*\n)?```bash\n(?P<code>.*?)```", re.S)
EXIT = re.compile(r"^(?P<command>.*?)\s*#\s*exit:\s*(?P<code>\d+)\s*$", re.M)


def _expect_exits(code: str) -> str:
    """`cmd   # exit: N` → run cmd, and fail the block unless it exited N."""
    return EXIT.sub(lambda m: (f'set +e; {m["command"]}; __rc=$?; set -e; [ "$__rc" -eq {m["code"]} ] || '
                               f'{{ echo "expected exit {m["code"]}, got $__rc: {m["command"]}" >&2; exit 97; }}'),
                    code)


def blocks(page: Path) -> list[tuple[str, str, int]]:
    """(marker, code, line number) of every bash block of a page."""
    text = page.read_text()
    return [(m.group("marker") or "", m.group("code"), text.count("\n", 0, m.start("code")) + 1)
            for m in BLOCK.finditer(text)]


def _has_option(requirement: str) -> bool:
    words = requirement.split()
    command, option = words[:-1], words[-1]
    out = subprocess.run([str(BIN / command[0]), *command[1:], "--help"], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"})
    return option in out.stdout


def test_every_bash_block_is_run_or_marked():
    """A typo in a marker must not silently turn a block off."""
    for page in PAGES:
        for marker, _, line in blocks(page):
            assert marker in ("", "no-test") or marker.startswith("requires: "), f"{page.name}:{line}: {marker}"


RUNNABLE = [p for p in PAGES if any(m != "no-test" for m, _, _ in blocks(p))]


@pytest.fixture(scope="session")
def docs_numba_cache(tmp_path_factory):
    """One compile cache for every page's commands (each page has its own empty HOME): the kernels compile once
    per test session, not once per page. A first run from an empty cache is tests/test_compile_cache.py's."""
    return tmp_path_factory.mktemp("docs-numba")


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_code_blocks_run(page, tmp_path, docs_numba_cache):
    state = tmp_path / ".state"
    work = tmp_path / "work"
    work.mkdir()
    (state).write_text(f"cd {work}\n")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "160",
           "TERM": "dumb", "HOME": str(tmp_path), "NUMBA_CACHE_DIR": str(docs_numba_cache)}
    env.pop("VIBRA_HOME", None)
    for marker, code, line in blocks(page):
        if marker == "no-test":
            continue
        if marker.startswith("requires: ") and not _has_option(marker.removeprefix("requires: ")):
            warnings.warn(f"{page.name}:{line}: skipped until `{marker.removeprefix('requires: ')}` exists", stacklevel=2)
            continue
        # The block runs in the shell state the previous one left (cwd, exported variables); the
        # state is saved on exit whatever the code.
        script = (f"source {state}\nset -eo pipefail\n"
                  f"trap 'rc=$?; {{ echo cd \"$(pwd)\"; export -p; }} > {state}; exit $rc' EXIT\n{_expect_exits(code)}")
        done = subprocess.run(["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, (
            f"{page.relative_to(ROOT)}:{line}: exit {done.returncode}\n--- block\n{code}"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")


def test_tutorial_runs_every_block():
    """The tutorial is the newcomer's path: none of its blocks may be switched off."""
    markers = [m for m, _, _ in blocks(ROOT / "docs" / "tutorial.md")]
    assert len(markers) >= 8 and "no-test" not in markers


def test_reference_is_current():
    """docs/reference/cli.md and settings.md are what `python -m vibra_cli.docs` writes from the code."""
    from vibra_cli import docs

    for name, render in docs.PAGES.items():
        assert (ROOT / "docs" / "reference" / name).read_text() == render(), (
            f"docs/reference/{name} is out of date: run `python -m vibra_cli.docs`")


def test_every_equipment_key_is_documented():
    from vibra.equipment import BEARING_KEYS, EQUIPMENT_KEYS, FILE_RULE_KEYS, FORMAT_KEYS, START_RULE_KEYS

    from vibra_cli.docs import EQUIPMENT_DOCS

    assert set(EQUIPMENT_DOCS) == EQUIPMENT_KEYS
    text = (ROOT / "docs" / "reference" / "settings.md").read_text()
    for key in BEARING_KEYS | FILE_RULE_KEYS | FORMAT_KEYS | START_RULE_KEYS:
        assert key in text, key


def test_readme_is_short_and_keeps_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    words = len(readme.split())
    assert words < 1500, words
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/vibra demo" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest" in readme


def test_links_between_pages_resolve():
    """Every relative link of README.md and docs/ points at a file that exists."""
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} → {target}")
    assert broken == []
