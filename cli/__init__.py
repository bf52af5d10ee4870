"""The ``vibra`` command line (installed as the ``vibra_cli`` package)."""
