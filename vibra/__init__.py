"""vibra — condition-monitoring analytics for rotating equipment.

This package is the library: readers, signal kernels, indicators, storage and
settings. It never imports typer or prefect, never prints and never exits;
the ``vibra_cli`` and ``vibra_flows`` packages wrap it through
``vibra_pipelines``.
"""

__version__ = "0.1.0"
