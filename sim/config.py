"""Schema of the ``sim`` config section."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from dualctl.errors import check_choice, check_range


@dataclass
class SimConfig:
    """MuJoCo world settings.

    Attributes:
        camera_size: square camera image side in pixels (64 default; up to 128).
        camera_hz: camera frame rate (Hz); also the rate episodes are recorded at and the
            gymnasium envs step at.
        physics_hz: physics rate (Hz); contact-rich grasps need >= 500.
        control_hz: rate (Hz) of the stage and finger servos' target updates inside physics;
            100 keeps a finger's target steps under 0.8 mm at full speed (the stage's
            velocity is integrated by MuJoCo every physics step).
        split: variation ranges episodes are drawn from: "train" or "heldout".
        wrist_camera: add a camera on the gripper besides the fixed scene camera.
        overhead_camera: add a fixed camera looking down more steeply (62 deg elevation
            against the scene camera's 38.5 deg) at the same spot from the same distance: the
            table fills its frame and the gripper's reach and turn show more plainly.
        distractor_pad: put Place's green pad in every task's scene, so only the instruction
            tells the tasks apart (data that teaches the planner to read it).
        video_episodes: `dualctl collect` saves an mp4 of this many first episodes per task.
    """

    camera_size: int = 64
    camera_hz: float = 20.0
    physics_hz: float = 500.0
    control_hz: float = 100.0
    split: str = "train"
    wrist_camera: bool = False
    overhead_camera: bool = False
    distractor_pad: bool = False
    video_episodes: int = 2

    def __post_init__(self):
        check_range("sim.camera_size", self.camera_size, 16, 128)
        check_range("sim.camera_hz", self.camera_hz, 1.0, 120.0)
        check_range("sim.physics_hz", self.physics_hz, 500.0, 10000.0)
        check_range("sim.control_hz", self.control_hz, self.camera_hz, self.physics_hz)
        check_choice("sim.split", self.split, ("train", "heldout"))
        check_range("sim.video_episodes", self.video_episodes, 0)

    @property
    def cameras(self) -> tuple[str, ...]:
        """The cameras a world with this config renders, the scene camera first."""
        on = [name for name, field in OPTIONAL_CAMERAS.items() if getattr(self, field)]
        return ("scene", *on)


#: Cameras rendered only when asked for -> the SimConfig switch that asks.
OPTIONAL_CAMERAS = {"wrist": "wrist_camera", "overhead": "overhead_camera"}


def with_cameras(config: SimConfig, cameras: Iterable[str]) -> SimConfig:
    """``config`` rendering every camera a consumer reads (a tracker's ``cameras``): each
    optional camera among them is switched on."""
    wanted = {OPTIONAL_CAMERAS[name]: True for name in cameras if name in OPTIONAL_CAMERAS}
    return dataclasses.replace(config, **wanted)
