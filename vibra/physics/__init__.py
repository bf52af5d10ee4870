"""Machine physics: ISO 20816 velocity severity, running-speed orders, bearing geometry and
defect orders, and the alert/danger levels per machine."""
