"""Every string that comes from data is escaped in the report (issue 32): a CSV channel named
``<script>alert(2)</script>``, a source file named ``<img src=x onerror=alert(3)>_…csv`` and label notes
with markup reach the machine page as text, never as elements — checked in the HTML as written and in the
DOM headless Chromium builds from it."""

from __future__ import annotations

import gzip
import html.parser
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from vibra.settings import load_settings
from vibra.workspace import init_workspace
from vibra_pipelines import defects, ingest, report, status, synth

from test_report import _chromium, chromium  # noqa: F401 - the headless browser fixture

START = datetime(2026, 6, 1, tzinfo=timezone.utc)
CHANNEL = "<script>alert(2)</script>"
FILE = "<img src=x onerror=alert(3)>_"
NOTE = '<iframe src="javascript:alert(4)"></iframe>'


class _Elements(html.parser.HTMLParser):
    """The elements and event-handler attributes a browser would build from a page."""

    def __init__(self):
        super().__init__()
        self.scripts, self.injected = 0, []

    def handle_starttag(self, tag, attrs):
        self.scripts += tag == "script"
        if tag in ("img", "iframe", "object", "embed") or any(k.startswith("on") for k, _ in attrs) or \
                any("javascript:" in (v or "") for _, v in attrs):
            self.injected.append((tag, attrs))


def _elements(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    root = tmp_path_factory.mktemp("escaping")
    ws, _ = init_workspace(root / "ws")
    synth.run(root / "export", n_equipment=1, days=0.5, seed=4, start=START, sensor_faults=False, workspace=ws)
    machine = next(p for p in (root / "export").iterdir() if p.is_dir())
    header = f'"{CHANNEL}",y'
    for f in machine.iterdir():  # the first channel of every file renamed
        if f.name.endswith(".csv"):
            f.write_text(f.read_text().replace("x,y", header, 1))
        elif f.name.endswith(".csv.gz"):
            f.write_bytes(gzip.compress(gzip.decompress(f.read_bytes()).decode().replace("x,y", header, 1).encode()))
    newest = sorted(f for f in machine.iterdir() if f.name.endswith(".csv"))[-1]
    newest.rename(newest.with_name(FILE + newest.name))  # the newest recording: its spectra name it
    settings = load_settings(ws.config_path, {})
    result = ingest.run(ws, settings, root / "export")
    assert result.failed == 0 and result.new > 0
    eid = machine.name
    recordings = status.recordings(ws).filter(pl.col("equipment_id") == eid).sort("recorded_at")
    defects.label_recording(ws, settings, recordings["recording_id"][-1], "bearing_outer_race", note=NOTE)
    defects.label_event(ws, settings, eid, recordings["recorded_at"][-1].isoformat(), note=NOTE)
    out = report.run(ws, settings, out=root / "out")
    return Path(out.out), eid


def test_data_strings_are_text_in_every_page(hostile):
    out, eid = hostile
    pages = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*.html")}
    machine = pages[f"machines/{eid}.html"]
    # the hostile strings reached the page (else escaping would be untested) ...
    assert "channel &lt;script&gt;alert(2)&lt;/script&gt;" in machine
    assert "&lt;img src=x onerror=alert(3)&gt;_" in machine
    for name, text in pages.items():
        found = _elements(text)
        # ... as text only: the fleet page's own sort-and-filter script is the one script element
        assert found.scripts == (1 if name == "index.html" else 0), name
        assert found.injected == [], (name, found.injected[:3])
        assert CHANNEL not in text and FILE not in text and NOTE not in text, name


def test_headless_chromium_builds_no_injected_element(hostile, tmp_path, chromium):  # noqa: F811 - the fixture
    out, eid = hostile
    dom = _chromium(["--dump-dom", (out / "machines" / f"{eid}.html").as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = _elements(dom.stdout)
    assert found.scripts == 0 and found.injected == [], found.injected[:3]
    assert "alert(2)" in dom.stdout and dom.stdout.count("<svg") >= 3
