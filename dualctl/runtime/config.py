"""Schema of the ``runtime`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import check_choice


@dataclass
class RuntimeConfig:
    """Scheduler settings.

    Attributes:
        clock: "real" (wall clock, paced by deadlines) or "virtual" (deterministic, fast).
    """

    clock: str = "virtual"

    def __post_init__(self):
        check_choice("runtime.clock", self.clock, ("real", "virtual"))
