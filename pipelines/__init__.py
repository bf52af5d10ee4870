"""Stages: each composes library calls, takes settings and a workspace, returns a result object.

Installed as the ``vibra_pipelines`` package (see pyproject.toml).
"""
