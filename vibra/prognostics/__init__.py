"""Prognostics: forecasts of indicators with intervals and time to a limit, health indicators
learned from run-to-failure lives, and the remaining useful life."""
