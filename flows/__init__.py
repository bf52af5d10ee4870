"""Prefect flows over ``vibra_pipelines`` (installed as ``vibra_flows``); filled by the flows issue."""
