"""Spectrum charts as a browser lays them out: harmonic cursor labels never overlap, the key stays inside the
chart (issue 31 item 5). Real CWRU recordings on the geometries where families' harmonics sit close (the 6203's
BPFO 3.05 orders beside 3×, 2×BSF beside BPFO on the 6205); the charts go into the report's own page template
and headless Chromium measures every label with getBoundingClientRect."""

from __future__ import annotations

import csv
import json
import re
from datetime import datetime, timezone

import numpy as np
import pytest
from test_report import _chromium, chromium  # noqa: F401  (the fixture)

from vibra.physics.bearing import fault_frequencies_hz
from vibra.diagnosis import bearing, recording
from vibra.physics.bearing import Geometry
from vibra.report import plots, spectra, svg
from vibra.settings import Bearing

B6205 = Bearing(9, 7.94, 39.04, 0.0)     # drive end
B6203 = Bearing(8, 6.746, 28.499, 0.0)   # fan end
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)

# runs in the page: every cursor label and key item's box, in CSS pixels, per chart
MEASURE = """
<script>
const out = [...document.querySelectorAll("svg.chart")].map(s => {
  const box = r => { const b = r.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
  return {title: s.querySelector("title").textContent, svg: box(s),
          labels: [...s.querySelectorAll("text.cursor")].map(t => [t.textContent, ...box(t)]),
          key: [...s.querySelectorAll("g.key, text.note")].map(g => [g.textContent, ...box(g)]),
          texts: [...s.querySelectorAll("text")].map(t => [t.textContent, ...box(t)])};
});
const pre = document.createElement("pre"); pre.id = "measured"; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


def _recording(real_data, folder: str, file: str) -> tuple[np.ndarray, float, float]:
    import scipy.io

    row = next(r for r in csv.DictReader((real_data / folder / "labels.csv").open()) if r["file"] == file)
    x = np.asarray(scipy.io.loadmat(str(real_data / folder / file))[row["de_key"]], dtype=np.float64).ravel()
    return x, float(row["sample_rate_hz"]), float(row["rpm_in_file"])


def _page(charts: list[str]) -> str:
    """The charts in the report's base template, as the machine page holds them (the same Jinja filter)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(loader=PackageLoader("vibra.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["svg"] = Markup
    page = env.from_string('{% extends "base.html" %}{% block body %}<div class="charts">'
                           '{% for c in charts %}{{ c|svg }}{% endfor %}</div>' + MEASURE + '{% endblock %}')
    return page.render(charts=charts, generated="now", vibra_version="test", workspace="ws")


@pytest.fixture
def cwru_charts(real_data) -> list[str]:
    charts = []
    for folder, file, geometry, channel in (("cwru_12k_de", "OR007@6_0.mat", B6205, "DE"),
                                            ("cwru_12k_de", "B021_1.mat", B6205, "DE"),
                                            ("cwru_12k_fe", "B007_0.mat", B6203, "FE")):
        x, fs, rpm = _recording(real_data, folder, file)
        shaft, faults = rpm / 60, fault_frequencies_hz(geometry, rpm)
        freqs, amp, unit = spectra.line_spectrum(x, fs, "g", 4096)
        charts.append(spectra.spectrum_chart(freqs, amp, amp * 0.5, unit, channel=channel, when=WHEN, name=file,
                                             base_when=WHEN, shaft_hz=shaft, faults_hz=faults))
        charts.append(spectra.envelope_chart(x, fs, (2400.0, 4000.0), channel=channel, when=WHEN, name=file,
                                             units="g", shaft_hz=shaft, faults_hz=faults))
        # the evidence bars with the recording's verdict written under the key, as the machine page does
        frame_length = recording.frame_length_for(1.0, fs)
        spectrum = recording.SpectrumAccumulator(fs, frame_length, np.float32)
        spectrum.feed(x)
        g = Geometry.of(geometry)
        evidence = recording.recording_evidence(spectrum.finish(), rpm, g)
        v = bearing.recording_verdict(evidence, geometry=g, resolution_orders=fs / frame_length / shaft)
        charts.append(plots.grouped_bars("Bearing fault evidence", "evidence (× what noise gives)",
                                         ["outer race", "inner race", "ball"],
                                         [("baseline windows, median", [1.0, 1.1, 0.9]),
                                          ("newest recording", list(evidence))],
                                         ref=(bearing.FLOOR, f"{bearing.FLOOR:g}: a family can be named"),
                                         note=f"{v.verdict} (newest recording, channel {channel}): {v.text}"))
    # a crowded chart: labelled cursors close together, one at the right edge, text that must stay escaped
    crowd = svg.Chart(title="crowded <cursors> & key", y_label="y", x_label="x", robust=False)
    crowd.lines.append(svg.Line("now <&>", [0.0, 100.0], [0.0, 1.0]))
    for k, f in enumerate((10.0, 11.0, 12.0, 13.0, 60.0, 61.5, 99.0, 99.5)):
        crowd.vlines.append((f, svg.PALETTE[1 + k % 6], f"cursor <{k}> {f:.1f} Hz", f"family {k} & a long key name"))
    charts.append(svg.render(crowd))
    return charts


def _overlap(a, b) -> float:
    """The area two boxes (left, top, right, bottom) share."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


@pytest.mark.parametrize("width", [1200, 800])
def test_cursor_labels_do_not_overlap_and_the_key_stays_inside(cwru_charts, tmp_path, chromium, width):  # noqa: F811
    page = tmp_path / "charts.html"
    page.write_text(_page(cwru_charts))
    dom = _chromium([f"--window-size={width},900", "--dump-dom", page.as_uri()], tmp_path).stdout
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    charts = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                        .replace("&gt;", ">"))
    assert len(charts) == 10 and charts[-1]["title"] == "crowded <cursors> & key"  # escaped, read back as text
    assert "cursor <7> 99.5 Hz" in [t[0] for t in charts[-1]["labels"]]  # the right-edge label: left of its line
    for c in charts:
        labels, left, top, right, bottom = c["labels"], *c["svg"]
        assert len(labels) >= 4 or c["title"].startswith("Bearing"), c["title"]  # the cursors are labelled
        texts = [t for t in c["texts"] if t[0].strip()]
        for i, a in enumerate(texts):  # cursor labels, key, values, ticks, titles: no text sits on another
            for b in texts[i + 1:]:
                assert _overlap(a[1:], b[1:]) < 0.5, f"{c['title']}: {a} and {b} overlap"
        for name, *box in labels + c["key"] + c["texts"]:  # titles, ticks and axis labels too
            assert left - 0.5 <= box[0] and box[2] <= right + 0.5 and top - 0.5 <= box[1] and box[3] <= bottom + 0.5, \
                f"{c['title']}: {name!r} {box} outside the chart {c['svg']}"
        if c["title"].startswith("Bearing fault evidence"):
            assert len(c["key"]) >= 3, c  # the two series and the verdict's text, wrapped
            continue
        if c["title"].startswith("crowded"):
            continue
        families = {"BPFO", "BPFI", "2×BSF", "FTF"}
        labelled = {t[0].split()[0] for t in labels}
        assert families <= labelled, f"{c['title']}: a family's cursor lost its label: {labelled}"  # shaft's go first
        keyed = " ".join(k[0] for k in c["key"])
        assert all(f in keyed for f in families), f"{c['title']}: a family is missing from the key: {keyed}"
        for i, a in enumerate(c["key"]):  # key items do not sit on each other either
            for b in c["key"][i + 1:]:
                assert _overlap(a[1:], b[1:]) < 0.5, f"{c['title']}: key items {a[0]!r} and {b[0]!r} overlap"
