"""Bearing fault diagnosis: the verdict for a recording (outer race, inner race, ball, or none)
and the evidence behind it, in orders of the running speed."""
