"""Signal processing: framing, one-pass indicator kernels, spectra."""
