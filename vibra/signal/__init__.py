"""Signal processing on arrays: framing into windows, one-pass indicator kernels, spectra,
resampling. Nothing here knows about machines, files or tables."""
