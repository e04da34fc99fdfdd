"""Carrying to where the reference shows the hand: a small CNN that reads the gripper's place
(x, y, z) off a camera frame, run on every reference frame the tracker encodes, and a servo
that drives a carried object's hand toward that place in the reference for now + lookahead
(the UniPi/DreamGen step: a video plan, then the motion that makes it).

Why not the head: its latent match says "go where the reference looks like" but with a
carried object it stops short. In the oracle loop of ``checkpoints/tracker`` (seeds
4000-4024) Place succeeded 12 times of 25 (8 blocks set down off the pad, 5 timeouts); with a
privileged servo toward the expert's recorded hand position while the block is carried,
20 of 25. The head still decides when to grasp and to let go, the grip reflex how hard to
squeeze, and the probing lift and the set-down still override the servo (it acts before
them). With the shipped reader the oracle bench's Place rises from 28 to 45 of 50. The
runtime leaves the servo off by default (``tracker.hand_pose.enabled``): on plans 1 s late it
follows readings that jump from plan to plan (closed loop 81/160 against 90/160).

The reader is trained on sim frames labelled with the recorded hand position (every frame:
proprio is always known), so on a robot it is trained the same way on its own recordings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dualctl.tracker.frame_reader import FrameReader, load_reader, save_reader
from dualctl.tracker.grip import SET_DOWN_BAND_M
from dualctl.types import PROPRIO_FIELDS, Action, Observation

STEM = "hand_pose"
WEIGHTS, CONFIG = f"{STEM}.safetensors", f"{STEM}.json"
#: The hand's x, y, z in proprio.
HAND_XYZ = [PROPRIO_FIELDS.index(k) for k in ("ee_x", "ee_y", "ee_z")]
HAND_VELOCITY = [PROPRIO_FIELDS.index(k) for k in ("ee_vx", "ee_vy", "ee_vz")]
#: The reader's outputs are in units of SCALE_M (m), so they are near [-1, 1].
SCALE_M = 0.1
#: Values a reading adds to each reference latent.
READING_DIM = 3
#: The reference has set its object down once its hand came down this far (m) from its
#: highest while carrying and then rose RISE_M (m); the hand then lowers at SET_DOWN_SPEED
#: (m/s, the grip reflex's own set-down speed).
DESCENT_M, RISE_M, SET_DOWN_SPEED = 0.02, 0.01, 0.02
#: The servo finishes a lift the head stops short of (``lift_m``) only once the hand has carried
#: its object this far (m) above where it picked it: lower, a grip found at the probe's pace
#: may still slide if the lift quickens (oracle bench, Slippery 4011 of the recipe's seed-0
#: tracker: carried at 34 N, raised at 3 cm/s from 4 cm, it slid out).
LIFT_AFTER_M = 0.05


class HandPoseNet(FrameReader):
    """Camera frame -> the gripper's (x, y, z) in the world frame (m)."""

    outputs = READING_DIM

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 1] -> (B, 3) hand positions (m)."""
        return self.raw(images) * SCALE_M


def save_hand_pose(folder: Path, net: HandPoseNet, info: dict | None = None) -> None:
    """Write the reader's weights and architecture (and ``info``) into ``folder``, atomically."""
    save_reader(folder, STEM, net, info)


def load_hand_pose(folder: str | Path) -> HandPoseNet:
    """A reader from ``folder`` (``hand_pose.safetensors`` + ``hand_pose.json``)."""
    fix = (
        "train one with `dualctl train hand-pose data=data/sim` or set tracker.hand_pose.checkpoint"
    )
    return load_reader(HandPoseNet, folder, STEM, fix)


class CarryServo:
    """Sets the hand's (x, y, z) velocity toward the reference's hand position while it carries
    something: ``gain`` (m/s per m to go), at most ``max_speed`` (m/s) per axis, changing by at
    most ``max_accel`` (m/s^2) from one tick to the next (a jump in speed is a jerk on the
    grip).

    It engages only once the reference's hand is ``engage_m`` (m) or more across the table
    from the hand (the reference carries the object somewhere; a straight lift stays the
    head's) and then stays engaged until :meth:`reset`. It never moves the hand lower than the
    head asks (a plan that lifts too little keeps the head's lift) unless the reference's hand
    is down within the grip reflex's set-down band of the height this hand picked its object
    at: the reference sets the object down there.

    Before it engages, a carried object's lift is the head's, but never slower than toward the
    reference's hand, at up to ``lift_speed`` (m/s), once that is more than ``lift_m`` (m)
    higher and the hand has carried the object :data:`LIFT_AFTER_M` up (z only; inf: never): a
    head that stops the lift short of the reference's height leaves the object under the
    task's mark (oracle bench, Slippery seeds 4006 and 4035 of the recipe's seed-1 tracker:
    lifted 9.5-10 cm of the 10 cm and sagging there, the reference 13 cm up). Slowly, since it
    only has to finish a lift: at ``max_speed`` (0.1 m/s) a heavy slippery block slid 7 mm
    down the pads in the first 8 cm and went on creeping (Slippery 4013 of the seed-2 tracker,
    dropped).

    When the reference's hand has come down by :data:`DESCENT_M` from its highest, to within
    the grip reflex's set-down band of the height this hand picked its object at, and then
    rises again by :data:`RISE_M`, the reference has set its object down and let go; this hand
    may still hold its own a little higher (it gripped it lower), so it goes straight down at
    :data:`SET_DOWN_SPEED` until the grip reflex feels the support and lets go.
    """

    def __init__(
        self,
        gain: float,
        max_speed: float,
        max_accel: float,
        engage_m: float = 0.0,
        lift_m: float = float("inf"),
        lift_speed: float = 0.03,
    ):
        self.gain, self.max_speed = gain, max_speed
        self.max_accel, self.engage_m = max_accel, engage_m
        self.lift_m, self.lift_speed = lift_m, lift_speed
        self.reset()

    def reset(self) -> None:
        self.engaged = False
        self.idle()

    def idle(self) -> None:
        """The hand carries nothing this tick: the next carry starts from its measured speed and
        watches the reference anew."""
        self._last: tuple[float, np.ndarray] | None = None
        self.setting_down = False
        self._highest: float | None = None
        self._lowest: float | None = None

    def __call__(
        self, action: Action, observation: Observation, goal: np.ndarray, pick_z: float | None
    ) -> Action:
        """``action`` with its x, y, z velocity toward ``goal`` (x, y, z in m) once engaged; the
        first engaged tick starts from the hand's measured velocity. ``pick_z`` is the hand's
        height (m) when it took hold of what it carries (None: unknown, never set down)."""
        to_go = goal - observation.proprio[HAND_XYZ]
        self.engaged = self.engaged or float(np.hypot(to_go[0], to_go[1])) >= self.engage_m
        if self.engaged:
            wanted = self._carry(action, goal, to_go, pick_z)
        elif to_go[2] > self.lift_m and self._lifted_from(observation, pick_z):
            wanted = action.ee_velocity[:3].copy()
            wanted[2] = max(wanted[2], min(self.gain * float(to_go[2]), self.lift_speed))
        else:
            self._last = None
            return action
        return self._limited(action, observation, wanted)

    @staticmethod
    def _lifted_from(observation: Observation, pick_z: float | None) -> bool:
        """Whether the hand has carried its object LIFT_AFTER_M above where it picked it."""
        return pick_z is not None and observation.proprio[HAND_XYZ[2]] >= pick_z + LIFT_AFTER_M

    def _carry(
        self, action: Action, goal: np.ndarray, to_go: np.ndarray, pick_z: float | None
    ) -> np.ndarray:
        """The engaged servo's (x, y, z) velocity (m/s) before the acceleration limit."""
        self._watch_for_set_down(float(goal[2]), pick_z)
        if self.setting_down:
            return np.array([0.0, 0.0, -SET_DOWN_SPEED])
        wanted = np.clip(self.gain * to_go, -self.max_speed, self.max_speed)
        setting_down_there = pick_z is not None and goal[2] <= pick_z + SET_DOWN_BAND_M
        if not setting_down_there:
            wanted[2] = max(wanted[2], float(action.ee_velocity[2]))
        return wanted

    def _limited(self, action: Action, observation: Observation, wanted: np.ndarray) -> Action:
        """``action`` with its (x, y, z) velocity moved toward ``wanted`` by at most
        ``max_accel`` since the last tick (the first from the hand's measured velocity)."""
        now = observation.timestamp
        then, previous = self._last or (now, observation.proprio[HAND_VELOCITY])
        step = self.max_accel * max(now - then, 0.0)
        velocity = action.ee_velocity.copy()
        velocity[:3] = np.clip(wanted, previous - step, previous + step)
        self._last = (now, velocity[:3].copy())
        return Action(velocity, action.gripper, action.timestamp)

    def _watch_for_set_down(self, goal_z: float, pick_z: float | None) -> None:
        if self._highest is None or goal_z > self._highest:
            self._highest, self._lowest = goal_z, None  # still going up: no descent yet
        elif pick_z is not None and goal_z <= min(self._highest - DESCENT_M,
                                                   pick_z + SET_DOWN_BAND_M):  # fmt: skip
            self._lowest = goal_z if self._lowest is None else min(self._lowest, goal_z)
        if self._lowest is not None and goal_z >= self._lowest + RISE_M:
            self.setting_down = True
