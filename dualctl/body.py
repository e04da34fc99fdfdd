"""The body interface: what the runtime drives, implemented by the MuJoCo sim
(``dualctl.sim``) and by real hardware (``dualctl.hardware``). The runtime never knows which.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from dualctl.types import Action, Observation


@dataclass(frozen=True)
class BodySpec:
    """What a body provides, known before it connects.

    Attributes:
        cameras: camera name -> (height, width) in pixels.
        camera_hz: camera frame rate, Hz.
        has_arm: False for gripper-only deployments (ee velocity commands are ignored).
    """

    cameras: dict[str, tuple[int, int]]
    camera_hz: float
    has_arm: bool = True


@dataclass(frozen=True)
class Health:
    """A body's state of health. ``faults`` name each problem with the device's own meaning."""

    ok: bool
    faults: tuple[str, ...] = field(default_factory=tuple)


class Body(abc.ABC):
    """A robot the runtime can drive. All methods are coroutines with bounded duration."""

    spec: BodySpec

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open devices (or build the sim) and bring the body to a ready state."""

    @abc.abstractmethod
    async def observe(self) -> Observation:
        """The latest value of each stream, each stamped with its sample time (s)."""

    @abc.abstractmethod
    async def act(self, action: Action) -> Action:
        """Send a command; return the command actually sent (after the device's clipping)."""

    @abc.abstractmethod
    async def health(self) -> Health:
        """Current faults, if any."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop motion and release devices. Safe to call twice."""
