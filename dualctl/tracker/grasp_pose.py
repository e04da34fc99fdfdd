"""Bringing the open hand to the object: a small CNN that reads the object's place on the table
and its yaw from a camera frame, and a servo that centres the hand over it and turns it to its
faces until the hand first touches something.

Why not the head: the tracker's latent does not carry the object's turn or its exact place
(nothing in the world-model or cloning losses asks for them), and the scene camera sees "away"
and "down" as nearly the same image motion, so the head lands the hand 1-5 cm off the block.
Yet both matter. With the arm turned to the expert's grasp yaw by a privileged servo, the oracle
loop of ``checkpoints/tracker`` succeeds on Fragile 39 and Slippery 39 of 50 instead of 27 and
26; with the hand also centred by a privileged servo, the closed loop with the planner (seeds
0-39) succeeds on 35/24/26/3 of 40 instead of 30/18/22/1. So the pose comes from a separate
reader and leaves the head's weights alone.

The reader is trained on sim frames labelled with the episode's object pose
(:mod:`dualctl.data.privileged`: known until the first touch): (sin, cos) of 4 x yaw, since a
box looks the same every quarter turn, and (x, y) on the table in the world frame. An object
on the table lies on a known plane, so one fixed camera's frame fixes its place. On a robot
the labels would come from another pose source (fiducials, a CAD fit); the servo only needs
the estimate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dualctl.data.privileged import QUARTER_TURNS, TOUCH, face_yaw
from dualctl.tracker.frame_reader import FrameReader, load_reader, save_reader
from dualctl.types import PROPRIO_FIELDS, Action, Observation

STEM = "grasp_pose"
WEIGHTS, CONFIG = f"{STEM}.safetensors", f"{STEM}.json"
_YAW = PROPRIO_FIELDS.index("ee_yaw")
_XY = [PROPRIO_FIELDS.index("ee_x"), PROPRIO_FIELDS.index("ee_y")]
_Z = PROPRIO_FIELDS.index("ee_z")
#: The reader's (x, y) outputs are in units of XY_SCALE (m), so they are near [-1, 1].
XY_SCALE = 0.1


class GraspPoseNet(FrameReader):
    """Camera frame -> the object's pose: unit (sin, cos) of 4 x its yaw, and its (x, y) (m)."""

    outputs = 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 1] -> (B, 4): a unit (sin, cos) of 4 x yaw, then
        (x, y) in m."""
        out = self.raw(images)
        return torch.cat([nn.functional.normalize(out[:, :2], dim=1), out[:, 2:] * XY_SCALE], 1)


def save_grasp_pose(folder: Path, net: GraspPoseNet, info: dict | None = None) -> None:
    """Write the reader's weights and architecture (and ``info``) into ``folder``, atomically."""
    save_reader(folder, STEM, net, info)


def load_grasp_pose(folder: str | Path) -> GraspPoseNet:
    """A reader from ``folder`` (``grasp_pose.safetensors`` + ``grasp_pose.json``)."""
    fix = "train one with `dualctl train grasp-pose data=data/sim` or set tracker.grasp_pose.checkpoint"
    return load_reader(GraspPoseNet, folder, STEM, fix)


class GraspServo:
    """Centres the open hand over the object and turns it to the face the reader sees, until the
    first contact.

    The estimate is the mean of every reading since :meth:`reset` (the object does not move
    before it is touched, and the hand hides more of it as it comes down). The yaw rate is set
    from the first reading on; the hand's sideways velocity only once it is low
    (``below_m``) and already near the object (``reach_m``), so the head still chooses where
    and when to go and the servo only corrects the last few centimetres. The first fingertip
    touch ends it for the episode: from then on the object may have moved. (The opening and
    the wrist do not: the head narrows the hand on the way down, and the wrist reads the
    arm's own accelerations.)
    """

    def __init__(
        self,
        gain: float,
        max_rate: float,
        xy_gain: float = 0.0,
        max_speed: float = 0.0,
        reach_m: float = 0.0,
        below_m: float = 0.0,
    ):
        self.gain, self.max_rate = gain, max_rate
        self.xy_gain, self.max_speed = xy_gain, max_speed
        self.reach_m, self.below_m = reach_m, below_m
        self.reset()

    def reset(self) -> None:
        self._sum, self._count = np.zeros(4), 0
        self.armed = True
        #: The estimated face yaw (rad, in [-pi/4, pi/4]), None before any reading.
        self.face_yaw: float | None = None
        #: The estimated object (x, y) (m), None before any reading.
        self.object_xy: np.ndarray | None = None

    def see(self, reading: np.ndarray) -> None:
        """Add one reading (sin, cos of 4 x yaw, x, y) of a frame taken while still armed."""
        if self.armed:
            self._sum += reading
            self._count += 1
            self.face_yaw = float(face_yaw(self._sum[0], self._sum[1]))
            self.object_xy = self._sum[2:] / self._count

    def __call__(self, action: Action, observation: Observation) -> Action:
        """``action`` with its yaw rate (and, near the object, its x and y velocity) set by the
        servo while armed and the estimate exists."""
        if not self.armed:  # every tick after the first touch: nothing more to do
            return action
        self.armed = float(np.abs(observation.tactile).max()) <= TOUCH
        if not self.armed or self.face_yaw is None:
            return action
        proprio = observation.proprio
        quarter = 2.0 * math.pi / QUARTER_TURNS
        turn = (self.face_yaw - float(proprio[_YAW]) + quarter / 2) % quarter - quarter / 2
        velocity = action.ee_velocity.copy()
        velocity[3] = float(np.clip(self.gain * turn, -self.max_rate, self.max_rate))
        if proprio[_Z] < self.below_m:  # high up the head alone steers across: skip the rest
            offset = self.object_xy - proprio[_XY]
            if float(np.hypot(*offset)) < self.reach_m:
                velocity[:2] = np.clip(self.xy_gain * offset, -self.max_speed, self.max_speed)
        return Action(velocity, action.gripper, action.timestamp)
