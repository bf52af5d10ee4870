"""Ingest: a source file becomes a recording (scan, blame, rate/start/rpm resolution, read-ahead)
and a recording becomes its feature rows (indicators, physics, diagnosis evidence, sensor quality)."""
