"""The report's library: read-only summaries of a workspace (status, forecasts, clusters, alarms,
verdicts), inline SVG charts and the Jinja2 templates (autoescaped)."""
