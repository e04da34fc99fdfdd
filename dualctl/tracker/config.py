"""Schema of the ``tracker`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import check_range


@dataclass
class TrackerConfig:
    """System 1 settings.

    Attributes:
        rate_hz: control (fast-path) rate, Hz.
    """

    rate_hz: float = 200.0

    def __post_init__(self):
        check_range("tracker.rate_hz", self.rate_hz, 1.0, 1000.0)
