"""The one place where shapes live: what a body observes, what the controller commands, what
the planner imagines. Every part (sim, hardware, planner, tracker, runtime) exchanges these.

Units are SI throughout: metres, seconds, newtons, newton-metres, radians. Every timestamp is
in seconds on one monotonic clock (the runtime's :class:`~dualctl.runtime.clock.Clock`).

Each type converts to and from a flat dict of numpy arrays (``to_arrays`` / ``from_arrays``) so
it can cross a process boundary through shared memory or a pipe without pickling objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

# --- proprioception ---------------------------------------------------------------------------
#: End-effector pose (m, rad), finger opening (m), their velocities (m/s, rad/s).
PROPRIO_FIELDS = (
    "ee_x", "ee_y", "ee_z", "ee_yaw", "width",
    "ee_vx", "ee_vy", "ee_vz", "ee_wyaw", "width_vel",
)  # fmt: skip
PROPRIO_DIM = len(PROPRIO_FIELDS)

# --- wrist force/torque -----------------------------------------------------------------------
#: Wrench in the wrist (sensor) frame: forces in N, torques in N·m.
WRENCH_FIELDS = ("fx", "fy", "fz", "tx", "ty", "tz")
WRENCH_DIM = len(WRENCH_FIELDS)

# --- fingertip tactile ------------------------------------------------------------------------
#: (finger, row, column, channel): two fingertips (left, right) with a 4x4 taxel grid each;
#: channels are normal force, shear along the finger's length and shear across it, all in N.
TACTILE_SHAPE = (2, 4, 4, 3)
TACTILE_CHANNELS = ("normal", "shear_long", "shear_lat")

# --- the gripper: a Robotiq 2F-85 ---------------------------------------------------------------
#: Finger opening range of a 2F-85 (m); 0 is fully closed.
GRIPPER_STROKE_M = 0.085
#: Closing speed range (m/s) and grip force range (N) from the 2F-85 datasheet.
GRIPPER_SPEED_RANGE = (0.020, 0.150)
GRIPPER_FORCE_RANGE = (20.0, 235.0)

# --- actions ----------------------------------------------------------------------------------
#: End-effector velocity command (m/s, rad/s) for the arm (or the sim's Cartesian stage).
EE_VELOCITY_FIELDS = ("vx", "vy", "vz", "wyaw")
#: The flat action vector: ee velocity, then gripper width (m), speed (m/s), force (N).
ACTION_FIELDS = (*EE_VELOCITY_FIELDS, "grip_width", "grip_speed", "grip_force")
ACTION_DIM = len(ACTION_FIELDS)


def _as_float_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    array = np.asarray(value, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    return array


def _clip(value: float, low: float, high: float) -> float:
    """``value`` within [low, high], NaN kept (as np.clip, without its cost per call)."""
    return float(min(max(value, low), high))


@dataclass(frozen=True)
class GripperCommand:
    """A gripper request, 1:1 with a Robotiq 2F-85's position/speed/force registers.

    Attributes:
        width_m: target finger opening in m (0 closed .. ``GRIPPER_STROKE_M`` open).
        speed_mps: finger speed in m/s.
        force_n: grip force limit in N; the fingers stop squeezing when it is reached.
    """

    width_m: float
    speed_mps: float
    force_n: float

    def clipped(self) -> GripperCommand:
        """The nearest command the device can execute."""
        return GripperCommand(
            width_m=_clip(self.width_m, 0.0, GRIPPER_STROKE_M),
            speed_mps=_clip(self.speed_mps, *GRIPPER_SPEED_RANGE),
            force_n=_clip(self.force_n, *GRIPPER_FORCE_RANGE),
        )


@dataclass(frozen=True)
class Action:
    """One control command.

    Attributes:
        ee_velocity: (4,) end-effector linear velocity (m/s, world frame) and yaw rate (rad/s).
        gripper: the gripper request.
        timestamp: s, when the command was issued.
    """

    ee_velocity: np.ndarray
    gripper: GripperCommand
    timestamp: float = 0.0

    def __post_init__(self):
        object.__setattr__(
            self, "ee_velocity", _as_float_array("ee_velocity", self.ee_velocity, (4,))
        )

    def to_array(self) -> np.ndarray:
        """The flat (ACTION_DIM,) float32 vector in ``ACTION_FIELDS`` order."""
        g = self.gripper
        return np.concatenate(
            [self.ee_velocity, np.array([g.width_m, g.speed_mps, g.force_n], np.float32)]
        )

    @classmethod
    def from_array(cls, vector, timestamp: float = 0.0) -> Action:
        v = _as_float_array("action", vector, (ACTION_DIM,))
        gripper = GripperCommand(float(v[4]), float(v[5]), float(v[6]))
        return cls(ee_velocity=v[:4].copy(), gripper=gripper, timestamp=timestamp)

    def is_finite(self) -> bool:
        return bool(np.isfinite(self.to_array()).all())

    @classmethod
    def hold(cls, width_m: float, force_n: float = GRIPPER_FORCE_RANGE[0], timestamp=0.0):
        """Stop the arm and keep the fingers where they are (width in m, force in N)."""
        gripper = GripperCommand(width_m, GRIPPER_SPEED_RANGE[0], force_n)
        return cls(np.zeros(4, np.float32), gripper, timestamp)


@dataclass
class Observation:
    """The latest value of every sensor stream, each with the time it was sampled.

    Attributes:
        timestamp: s, sample time of the newest stream.
        images: camera name -> (H, W, 3) uint8 RGB image.
        proprio: (PROPRIO_DIM,) float32, fields in ``PROPRIO_FIELDS`` order.
        wrench: (6,) float32 wrist force (N) and torque (N·m).
        tactile: ``TACTILE_SHAPE`` float32 fingertip taxel forces (N).
        stamps: stream name ("image/<camera>", "proprio", "wrench", "tactile") -> sample time, s.
    """

    timestamp: float
    images: dict[str, np.ndarray]
    proprio: np.ndarray
    wrench: np.ndarray
    tactile: np.ndarray
    stamps: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.proprio = _as_float_array("proprio", self.proprio, (PROPRIO_DIM,))
        self.wrench = _as_float_array("wrench", self.wrench, (WRENCH_DIM,))
        self.tactile = _as_float_array("tactile", self.tactile, TACTILE_SHAPE)
        for name, image in self.images.items():
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                raise ValueError(
                    f"images[{name!r}]: expected (H, W, 3) uint8, got {image.shape} {image.dtype}"
                )

    def age(self, now: float, stream: str | None = None) -> float:
        """Seconds since ``stream`` (or the oldest stream) was sampled."""
        if stream is not None:
            return now - self.stamps.get(stream, self.timestamp)
        return now - min(self.stamps.values(), default=self.timestamp)

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {f"images/{k}": v for k, v in self.images.items()}
        arrays.update(proprio=self.proprio, wrench=self.wrench, tactile=self.tactile)
        arrays["timestamp"] = np.array(self.timestamp, np.float64)
        arrays["stamps"] = np.array(json.dumps(self.stamps))
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Observation:
        images = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("images/")}
        return cls(
            timestamp=float(arrays["timestamp"]),
            images=images,
            proprio=arrays["proprio"],
            wrench=arrays["wrench"],
            tactile=arrays["tactile"],
            stamps=json.loads(str(arrays["stamps"])),
        )


@dataclass
class Plan:
    """A reference future imagined by the planner.

    Attributes:
        frames: (K, H, W, 3) uint8 predicted camera images.
        times: (K,) float64 s on the runtime clock: when each frame should come true.
        conditioned_at: s, sample time of the observation the plan was made from.
        valid_until: s, after this the plan is stale and must not be followed.
        instruction: the task instruction it was conditioned on.
        camera: name of the camera the frames imitate.
    """

    frames: np.ndarray
    times: np.ndarray
    conditioned_at: float
    valid_until: float
    instruction: str = ""
    camera: str = "scene"

    def __post_init__(self):
        self.times = np.asarray(self.times, np.float64)
        if self.frames.dtype != np.uint8 or self.frames.ndim != 4 or self.frames.shape[3] != 3:
            raise ValueError(f"frames: expected (K, H, W, 3) uint8, got {self.frames.shape}")
        if self.times.shape != (len(self.frames),):
            raise ValueError(f"times: expected ({len(self.frames)},), got {self.times.shape}")
        if len(self.times) > 1 and not np.all(np.diff(self.times) > 0):
            raise ValueError("times: expected strictly increasing frame times")

    @property
    def horizon(self) -> int:
        return len(self.frames)

    def is_stale(self, now: float) -> bool:
        return now > self.valid_until

    def to_arrays(self) -> dict[str, np.ndarray]:
        meta = {
            "conditioned_at": self.conditioned_at,
            "valid_until": self.valid_until,
            "instruction": self.instruction,
            "camera": self.camera,
        }
        return {"frames": self.frames, "times": self.times, "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Plan:
        meta = json.loads(str(arrays["meta"]))
        return cls(frames=arrays["frames"], times=arrays["times"], **meta)
