"""Streaming decimation by an integer factor, for recordings taken faster than their machine's others."""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


def decimate_chunks(chunks: Iterable[np.ndarray], q: int) -> Iterator[np.ndarray]:
    """Low-pass (linear-phase FIR, cut-off 0.8 × the new Nyquist) and keep every ``q``-th sample.

    The filter state is carried from chunk to chunk, so the result does not depend on where the
    chunks are cut. The FIR delays the signal by 10·q input samples (e.g. 0.8 ms for q = 4 at
    48 kHz), which is left in place.
    """
    from scipy.signal import firwin, lfilter

    taps = firwin(20 * q + 1, 0.8 / q)
    state = None
    phase = 0  # absolute index of the next input sample, modulo q
    for chunk in chunks:
        x = np.asarray(chunk, dtype=np.float64)
        if x.ndim == 1:
            x = x[:, None]
        if state is None:
            state = np.zeros((taps.shape[0] - 1, x.shape[1]))
        y, state = lfilter(taps, 1.0, x, axis=0, zi=state)
        yield y[(-phase) % q::q]
        phase = (phase + x.shape[0]) % q
