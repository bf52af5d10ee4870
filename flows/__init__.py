"""Prefect flows over ``vibra_pipelines`` (installed as ``vibra_flows``): see :mod:`vibra_flows.stages`.

Importing this package does not import Prefect; ``vibra_flows.stages`` does.
"""
