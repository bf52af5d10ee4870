"""HTML reports: inline SVG charts and Jinja2 templates (autoescaped)."""
