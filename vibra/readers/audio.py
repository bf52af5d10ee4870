"""WAV and other audio containers (FLAC, AIFF, AU, W64, CAF) through ``soundfile`` (libsndfile).

Any sample format libsndfile knows — 8/16/24/32-bit integer PCM, 32/64-bit
float — in any number of channels, read a block of frames at a time. Integer
PCM comes out scaled to ±1 full scale (float files as stored); a machine's
``full_scale`` multiplies that into physical units (e.g. ``full_scale = 50``
when the recorder's full scale is 50 g). Units come from the machine's ``units``.
"""

from __future__ import annotations

from pathlib import Path


from vibra.errors import InputError
from vibra.readers.base import Recording, check_expansion
from vibra.equipment import Equipment


def read_audio(path: Path, equipment: Equipment, chunk_rows: int, on_time_gap: str = "split") -> Recording:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        kind = "WAV" if path.name.lower().endswith(".wav") else "audio"
        raise InputError(f"{path}: not a readable {kind} file ({exc}); check the file's format and extension") from None
    if info.frames == 0:
        raise InputError(f"{path}: audio file holds no samples; export the recording again")
    scale = equipment.full_scale or 1.0

    def chunks():
        check_expansion(path, info.frames, info.channels)  # a header may declare more frames than the file holds
        try:
            with sf.SoundFile(str(path)) as fh:
                while True:
                    block = fh.read(frames=chunk_rows, dtype="float64", always_2d=True)
                    if block.shape[0] == 0:
                        return
                    yield block * scale if scale != 1.0 else block
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputError(f"{path}: audio data unreadable ({exc}); re-copy the file") from None

    return Recording(channels=[f"ch{i}" for i in range(info.channels)], chunks=chunks(),
                     sample_rate_hz=float(info.samplerate), declared_samples=info.frames)
