"""The README's report screenshots show what the report code makes now (issue 28): each image is
committed no earlier than the last commit of the report code it shows; regenerate them with
`just screenshots` (a fresh demo, headless Chromium) after changing that code."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPORT_CODE = ["vibra/report/templates", "vibra/report/fleet.py", "vibra/report/plots.py", "vibra/report/svg.py",
               "vibra/report/spectra.py", "pipelines/report"]
SHOTS = ["docs/report-fleet.png", "docs/report-machine.png"]


def _committed_at(paths: list[str]) -> int:
    out = subprocess.run(["git", "log", "-1", "--format=%ct", "--", *paths], cwd=ROOT, capture_output=True, text=True)
    return int(out.stdout.strip() or 0)


@pytest.mark.parametrize("shot", SHOTS)
def test_screenshot_is_not_older_than_the_report_code(shot):
    if shutil.which("git") is None or subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode:
        pytest.skip("not a git checkout: commit times unknown")
    code, image = _committed_at(REPORT_CODE), _committed_at([shot])
    assert image >= code, (f"{shot} was committed before the report code it shows changed; "
                           "regenerate it with `just screenshots` and commit it")
    assert "screenshots:" in (ROOT / "justfile").read_text() and shot in (ROOT / "justfile").read_text()
