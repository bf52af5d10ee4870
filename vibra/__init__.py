"""vibra — condition-monitoring analytics for rotating equipment.

This package is the library, one subpackage per domain:

* ``signal``      framing, one-pass indicator kernels, spectra;
* ``physics``     ISO 20816 severity, running-speed orders, bearing defect orders, alert/danger levels;
* ``diagnosis``   the bearing-fault verdict of a recording and its evidence;
* ``ingest``      a source file becomes a recording, a recording its feature rows;
* ``readers``     one module per acquisition format (CSV, Parquet, MATLAB, WAV, TDMS, UFF);
* ``anomaly``     anomaly estimators, their registry and the k-of-m alarm rule;
* ``prognostics`` forecasts and time to a limit, health indicators, remaining useful life;
* ``discovery``   embeddings, clusters, the defect kNN, training-set readiness;
* ``storage``     the Delta lake's tables, the ledger (``storage.ledger``: every catalog query and the
                  ingest lock), artifacts, hourly aggregates, metrics;
* ``report``      the read-only summaries and the HTML report's charts and templates.

The top level keeps what every domain uses: ``errors``, ``spec`` (a declared, validated value),
``settings``, ``equipment``, ``workspace``, ``durations`` and ``synth``. The library never imports
typer or prefect, never prints and never exits; ``vibra_cli`` and ``vibra_flows`` wrap it through ``vibra_pipelines``.
"""

__version__ = "0.1.0"
