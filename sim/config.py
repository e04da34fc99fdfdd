"""Schema of the ``sim`` config section."""

from __future__ import annotations

from dataclasses import dataclass

from dualctl.errors import check_choice, check_range


@dataclass
class SimConfig:
    """MuJoCo world settings.

    Attributes:
        camera_size: square camera image side in pixels (64 default; up to 128).
        camera_hz: camera frame rate (Hz); also the rate episodes are recorded at.
        physics_hz: physics rate (Hz); contact-rich grasps need >= 500.
        split: variation ranges episodes are drawn from: "train" or "heldout".
        wrist_camera: add a camera on the gripper besides the fixed scene camera.
    """

    camera_size: int = 64
    camera_hz: float = 20.0
    physics_hz: float = 500.0
    split: str = "train"
    wrist_camera: bool = False

    def __post_init__(self):
        check_range("sim.camera_size", self.camera_size, 16, 128)
        check_range("sim.camera_hz", self.camera_hz, 1.0, 120.0)
        check_range("sim.physics_hz", self.physics_hz, 500.0, 10000.0)
        check_choice("sim.split", self.split, ("train", "heldout"))
