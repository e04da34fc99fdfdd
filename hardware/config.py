"""Schema of the ``hardware`` config section (files in ``configs/hardware/``)."""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import check_range


@dataclass
class HardwareConfig:
    """Real devices. Filled in by the files in ``configs/hardware/``.

    Attributes:
        name: a label for logs.
    """

    name: str = "none"
    timeout_s: float = 0.05

    def __post_init__(self):
        check_range("hardware.timeout_s", self.timeout_s, 0.001, 5.0)
