"""Typed errors a user can cause, each with a message that names the thing, the value and the fix.

The CLI turns any :class:`DualctlError` into one line on stderr and exit status 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class DualctlError(Exception):
    """Base of every error the user can cause (bad config, path, checkpoint, device)."""


class ConfigError(DualctlError, ValueError):
    """A configuration key holds a value that cannot be used."""

    def __init__(self, key: str, value: Any, expected: str):
        self.key, self.value, self.expected = key, value, expected
        super().__init__(f"config key '{key}' = {value!r}: expected {expected}")


class CheckpointError(DualctlError):
    """A checkpoint is missing, unreadable, or does not match the config it is used with."""


class DataError(DualctlError):
    """A dataset or episode file is missing or malformed."""


def check_range(
    key: str, value: float, low: float | None = None, high: float | None = None
) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (either bound may be None)."""
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ConfigError(key, value, f"a number in {bounds}")


def check_choice(key: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices``."""
    choices = tuple(choices)
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(repr(c) for c in choices))
