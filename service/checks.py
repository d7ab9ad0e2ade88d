"""Checks of configuration values, shared by every component: a bad value raises ConfigError naming it."""

from __future__ import annotations

import math

from service.errors import ConfigError


def check_range(name: str, value: int, low: int, high: int) -> None:
    """Raise ConfigError unless `value` is an integer from `low` to `high`."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(name, value, f"an integer from {low} to {high}")


def check_seconds(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """Raise ConfigError unless `value` is a number of seconds from `low` (excluded when `low_open`) to `high`."""
    number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not number or not low <= value <= high or (low_open and value == low):
        bound = f"more than {low:g}" if low_open else f"from {low:g}"
        raise ConfigError(name, value, f"a number of seconds {bound} to {high:g}")
