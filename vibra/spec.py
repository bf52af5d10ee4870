"""One declared value: :class:`Spec` says where a setting or machine key lives, its type, range or choices
and its meaning; :func:`coerce` validates a value against it, with one message shape everywhere
(``<where>: out of range; must be a number in 64..1048576``).

:mod:`vibra.settings` declares the workspace settings with it, :mod:`vibra.equipment` the machine keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vibra.errors import ConfigError


def number_text(value: float) -> str:
    """A number as the messages and the vibra.toml template write it (12000, not 12000.0)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Spec:
    """One scalar value: where it lives, its type, range and meaning.

    ``low`` / ``high`` bound a number (inclusive; ``low_open`` / ``high_open`` make a bound exclusive);
    ``choices`` lists the values a text (or an integer) may take."""

    section: str
    key: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    doc: str = ""
    choices: tuple = ()
    low_open: bool = False
    high_open: bool = False

    @property
    def env(self) -> str:
        return f"VIBRA_{self.section}_{self.key}".upper()

    @property
    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(str(c) for c in self.choices)
        if self.kind is str:
            return "text"
        if self.kind is bool:
            return "true or false"
        noun = "an integer" if self.kind is int else "a number"
        if self.low_open or self.high_open:
            lo = "(" if self.low_open else "["
            hi = ")" if self.high_open or self.high is None else "]"
            return (f"{noun} in {lo}{number_text(self.low if self.low is not None else -math.inf)}, "
                    f"{number_text(self.high) if self.high is not None else '∞'}{hi}")
        if self.low is not None and self.high is not None:
            return f"{noun} in {number_text(self.low)}..{number_text(self.high)}"
        if self.low is not None:
            return f"{noun} >= {number_text(self.low)}"
        return noun

    def within(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)


def coerce(spec: Spec, value: Any, where: str) -> Any:
    """``value`` as ``spec.kind`` (text from the environment converted), or a
    :class:`~vibra.errors.ConfigError` starting with ``where`` and saying what is allowed."""
    try:
        if spec.kind is str:
            if not isinstance(value, str) or (spec.choices and value not in spec.choices):
                raise ValueError
            return value
        if spec.kind is bool:
            if isinstance(value, str):
                if value.lower() not in {"1", "0", "true", "false", "yes", "no"}:
                    raise ValueError
                return value.lower() in {"1", "true", "yes"}
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(value, bool) or isinstance(value, (list, dict, tuple)):
            raise ValueError
        if spec.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            out: Any = int(value)
        else:
            out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: must be {spec.allowed}") from None
    if not math.isfinite(out):  # nan passes every range comparison; inf makes waits endless
        raise ConfigError(f"{where}: not a finite number; must be {spec.allowed}")
    if spec.choices and out not in spec.choices:
        raise ConfigError(f"{where}: must be {spec.allowed}")
    if not spec.within(out):
        raise ConfigError(f"{where}: out of range; must be {spec.allowed}")
    return out
