"""Schema of the ``planner`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import check_range


@dataclass
class PlannerConfig:
    """System 2 settings.

    Attributes:
        horizon: number of future frames in a plan.
        horizon_s: time the plan spans, s.
    """

    horizon: int = 8
    horizon_s: float = 2.0

    def __post_init__(self):
        check_range("planner.horizon", self.horizon, 1, 64)
        check_range("planner.horizon_s", self.horizon_s, 0.1, 30.0)
