"""Schema of the ``ablate`` config section."""

from __future__ import annotations

from dataclasses import dataclass, field

from dualctl.errors import check_range


@dataclass
class AblateConfig:
    """Ablation settings.

    Attributes:
        arms: names of the arms to run.
        episodes_per_cell: episodes per (task, arm, split) cell.
    """

    arms: list[str] = field(default_factory=lambda: ["full"])
    episodes_per_cell: int = 50

    def __post_init__(self):
        check_range("ablate.episodes_per_cell", self.episodes_per_cell, 1)
