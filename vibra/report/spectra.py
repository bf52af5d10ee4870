"""Spectra an analyst reads: the velocity (or acceleration) spectrum with shaft-order and bearing
defect cursors, baseline vs now, the envelope spectrum, and a waterfall over the machine's recordings.

Pure functions over arrays; the report stage reads the waveforms.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from vibra.physics.indicators import ACCELERATION_MM_S2, VELOCITY_MM_S
from vibra.report import plots, svg
from vibra.signal.envelope import envelope_amplitude_spectrum
from vibra.signal.indicators import frame, window_spectra

VELOCITY_TOP_HZ = 1000.0  # ISO 20816 velocity band ends here
# cursor colours: each family its own, none the colour of the "now" line (PALETTE[0]); shaft cursors grey
SHAFT_COLOUR = "#7F7F7F"
DEFECTS = (("BPFO", "bpfo", 1.0, svg.PALETTE[3]), ("BPFI", "bpfi", 1.0, svg.PALETTE[2]),
           ("2×BSF", "bsf", 2.0, svg.PALETTE[4]), ("FTF", "ftf", 1.0, svg.PALETTE[1]))
FAMILY_OF = {"BPFO": "outer race", "BPFI": "inner race", "2×BSF": "ball", "FTF": "cage"}
ENVELOPE_WINDOWS = 64  # windows averaged into the machine page's envelope spectrum (at most)


def line_spectrum(x: np.ndarray, sample_rate_hz: float, units: str | None, frame_length: int
                  ) -> tuple[np.ndarray, np.ndarray, str]:
    """Welch-averaged amplitude spectrum (r.m.s. per line) of one channel: velocity in mm/s when
    ``units`` is an acceleration or velocity unit, else the signal's own units.

    Returns (frequencies_hz, amplitude, unit label)."""
    frames = frame(x, frame_length, frame_length // 2)
    if frames.shape[0] == 0:
        frames = x[None, :]
    freqs, _, power = window_spectra(np.array(frames, dtype=float), sample_rate_hz)
    p = power.mean(axis=0)
    unit = (units or "").strip()
    if unit in ACCELERATION_MM_S2:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(freqs > 0, p * (ACCELERATION_MM_S2[unit] / (2 * np.pi * np.maximum(freqs, 1e-9))) ** 2, 0.0)
        return freqs, np.sqrt(v), "velocity (mm/s RMS per line)"
    if unit in VELOCITY_MM_S:
        return freqs, np.sqrt(p) * VELOCITY_MM_S[unit], "velocity (mm/s RMS per line)"
    return freqs, np.sqrt(p), f"amplitude ({unit or 'signal units'} RMS per line)"


def _cursors(chart: svg.Chart, shaft_hz: float | None, faults_hz: dict[str, float] | None, top: float) -> None:
    """Defect-frequency and 1×/2×/3× cursors with a key entry per family; labels in Hz and orders. The defect
    lines come first: where labels crowd, theirs are placed and a shaft harmonic's keeps its line and tooltip."""
    for name, key, mult, colour in DEFECTS if faults_hz else ():
        f = mult * faults_hz[key]
        order = f / shaft_hz if shaft_hz else None
        if f <= top:
            chart.vlines.append((f, colour, f"{name} {f:.1f} Hz" + (f" ({order:.2f}×)" if order else ""),
                                 f"{name} {f:.1f} Hz" + (f" = {order:.2f} orders" if order else "")))
    if shaft_hz:
        for h in (1, 2, 3):
            if h * shaft_hz <= top:
                chart.vlines.append((h * shaft_hz, SHAFT_COLOUR, f"{h}× {h * shaft_hz:.1f} Hz",
                                     f"shaft 1×/2×/3× ({shaft_hz:.2f} Hz)"))


def spectrum_chart(freqs: np.ndarray, now: np.ndarray, base: np.ndarray | None, unit_label: str, *, channel: str,
                   when: datetime, name: str, base_when: datetime | None, shaft_hz: float | None,
                   faults_hz: dict[str, float] | None, base_name: str = "baseline") -> str:
    """The latest spectrum of a channel (and the reference's, dashed, named ``base_name``) up to 1 kHz (velocity)
    or Nyquist."""
    top = min(VELOCITY_TOP_HZ, float(freqs[-1])) if unit_label.startswith("velocity") else float(freqs[-1])
    if shaft_hz:  # the orders an analyst reads: up to 12× or past the third harmonic of the highest defect line
        highest = max([m * faults_hz[k] for _, k, m, _ in DEFECTS] if faults_hz else [0.0])
        top = min(top, max(12 * shaft_hz, 3.3 * highest))
    keep = (freqs >= (2.0 if unit_label.startswith("velocity") else 0.0)) & (freqs <= top)
    orders = f"; 1× = {shaft_hz:.2f} Hz = {60 * shaft_hz:.0f} r/min" if shaft_hz else ""
    chart = svg.Chart(title=f"Spectrum, channel {channel}: {name} ({when:%Y-%m-%d %H:%M} UTC)",
                      y_label=unit_label, x_label=f"frequency (Hz){orders}", robust=False)
    chart.lines.append(svg.Line(f"now ({when:%m-%d %H:%M})", freqs[keep].tolist(), now[keep].tolist(), svg.PALETTE[0]))
    if base is not None and base_when is not None:
        chart.lines.append(svg.Line(f"{base_name} ({base_when:%m-%d %H:%M})", freqs[keep].tolist(), base[keep].tolist(),
                                    "#7F7F7F", dash=True))
    _cursors(chart, shaft_hz, faults_hz, top)
    return svg.render(chart)


def _family_cursors(chart: svg.Chart, shaft_hz: float, faults_hz: dict[str, float], top: float) -> None:
    """Harmonics 1–3 of each defect line, one colour per family; the label on the first harmonic only (the
    others carry theirs as a tooltip), so labels do not pile up; the key names the family. The families come
    before the shaft: where labels crowd, theirs are placed first."""
    for name, key, mult, colour in DEFECTS:
        base = mult * faults_hz[key]
        for h in (1, 2, 3) if key != "ftf" else (1,):
            f = h * base
            if f <= top:
                label = f"{h}×{name}".replace("1×", "") if h == 1 else ""
                chart.vlines.append((f, colour, label or "", f"{name} × 1–3 ({FAMILY_OF[name]}), {base:.1f} Hz = "
                                     f"{base / shaft_hz:.2f} orders"))
    for h in (1, 2, 3):
        if h * shaft_hz <= top:
            chart.vlines.append((h * shaft_hz, SHAFT_COLOUR, f"{h}×" if h == 1 else "", "shaft 1×/2×/3×"))


def envelope_chart(x: np.ndarray, sample_rate_hz: float, band_hz: tuple[float, float], *, channel: str,
                   when: datetime, name: str, units: str | None, shaft_hz: float, faults_hz: dict[str, float],
                   frame_length: int = 4096) -> str | None:
    """Envelope spectrum of a channel's recording in physical units, with each family's harmonic cursors.

    The envelope of the ``band_hz`` band (the kurtogram's), averaged over up to ENVELOPE_WINDOWS windows of
    ``frame_length`` (hop half a window); each line's height is the envelope's 0-peak modulation amplitude
    in the signal's units (:func:`vibra.signal.envelope.envelope_amplitude_spectrum` states the scaling).
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)] if not np.isfinite(x).all() else x
    if x.shape[0] < 16:
        return None
    length = min(frame_length, x.shape[0])
    frames = frame(x, length, length // 2)[:ENVELOPE_WINDOWS]
    env_freqs, amp = envelope_amplitude_spectrum(frames, sample_rate_hz, band_hz)
    top = 3.3 * max(faults_hz["bpfi"], 2 * faults_hz["bsf"], faults_hz["bpfo"])
    keep = (env_freqs > 2) & (env_freqs <= top)
    unit = (units or "signal units").strip()
    # the band and the averaging in the axis label: the title stays one line inside the chart
    chart = svg.Chart(title=f"Envelope spectrum, channel {channel}: {name} ({when:%Y-%m-%d %H:%M} UTC)",
                      y_label=f"envelope amplitude, {unit} 0-peak",
                      x_label=f"frequency (Hz); 1× = {shaft_hz:.2f} Hz; envelope of the {band_hz[0]:.0f}–"
                              f"{band_hz[1]:.0f} Hz band, {frames.shape[0]} windows averaged, Hann, ×2/Σw",
                      robust=False)
    chart.lines.append(svg.Line("now: envelope spectrum", env_freqs[keep].tolist(), amp[keep].tolist(), svg.PALETTE[0]))
    _family_cursors(chart, shaft_hz, faults_hz, top)
    return svg.render(chart)


def waterfall(times: list[datetime], names: list[str], spectra: list[np.ndarray], freqs: np.ndarray, *,
              channel: str, unit_label: str, top_hz: float) -> str:
    """Spectra of a channel over the machine's recordings, stacked (a waterfall; linear amplitude)."""
    keep = freqs <= top_hz
    unit = unit_label.split("(")[-1].rstrip(")") if "(" in unit_label else unit_label
    return plots.waterfall(f"Waterfall, channel {channel}: {len(times)} recordings over its history ({unit})",
                           times, freqs[keep], np.vstack([s[keep] for s in spectra]), unit=unit,
                           names=names)
