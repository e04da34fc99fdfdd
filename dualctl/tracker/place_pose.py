"""Setting a carried object down on the support the plan carries it to: a small CNN that reads
whether the table holds a target pad and where, and a servo that finishes a carry that heads
for it over the pad's centre.

Why not the plan alone: the planner sees one 64x64 front view, where a block carried a few
centimetres high already overlaps the pad 5-7 cm short of it; its plans then hold still or set
the block down there (closed loop, Place seed 7: carried 5 cm of the 11 cm to the pad, lowered
6.5 cm from its centre). The plan still says what to do (carry the block across, towards the
pad); the servo only says where exactly, as the grasp-pose servo does for the grasp. It
engages only once the hand has carried its object ``engage_m`` across the table and in the
pad's direction, so a lift in place (or a carry elsewhere) stays the head's.

The reader is trained on sim frames labelled with the episode's pad (present or not, and its
(x, y) on the table), before the first touch: the arm is still above the table and the pad in
full view. The servo averages the readings of those frames (the pad does not move). On a robot
the labels would come from another pose source (a fiducial, a measured fixture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from dualctl.data.privileged import TOUCH
from dualctl.tracker.frame_reader import FrameReader, load_reader, save_reader
from dualctl.types import PROPRIO_FIELDS, Action, Observation

STEM = "place_pose"
WEIGHTS, CONFIG = f"{STEM}.safetensors", f"{STEM}.json"
_XY = [PROPRIO_FIELDS.index("ee_x"), PROPRIO_FIELDS.index("ee_y")]
_Z = PROPRIO_FIELDS.index("ee_z")
#: Over the pad the hand comes down fast until this far (m) above the height it picked the
#: object at, then at the servo's ``lower_speed`` (a block carried 12 cm high took 5 s at 2 cm/s
#: alone: closed loop, Place seed 9 with 1 s of plan delay, timed out).
LANDING_M = 0.01
#: The reader's (x, y) outputs are in units of XY_SCALE (m), so they are near [-1, 1].
XY_SCALE = 0.1


class PlacePoseNet(FrameReader):
    """Camera frame -> the probability that the table holds a target pad, and its (x, y) (m)."""

    outputs = 3

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) float images in [0, 1] -> (B, 3): a presence logit, then (x, y) in m."""
        out = self.raw(images)
        return torch.cat([out[:, :1], out[:, 1:] * XY_SCALE], 1)


def save_place_pose(folder: Path, net: PlacePoseNet, info: dict | None = None) -> None:
    """Write the reader's weights and architecture (and ``info``) into ``folder``, atomically."""
    save_reader(folder, STEM, net, info)


def load_place_pose(folder: str | Path) -> PlacePoseNet:
    """A reader from ``folder`` (``place_pose.safetensors`` + ``place_pose.json``)."""
    fix = (
        "train one with `dualctl train place-pose data=data/sim` or set "
        "tracker.place_pose.checkpoint"
    )
    return load_reader(PlacePoseNet, folder, STEM, fix)


class PlaceServo:
    """Carries a held object over the pad the reader saw and lowers it there.

    The pad estimate is the mean of the readings taken since :meth:`reset` until the first
    touch; the table holds a pad when their mean presence logit is positive. While the hand
    carries something, the servo engages once the hand is ``engage_m`` (m) across the table from
    where it took hold, in a direction within ``acos(min_cosine)`` of the pad's. Engaged, it sets
    the x, y velocity toward the pad's centre (``gain`` m/s per m, at most ``max_speed`` m/s per
    axis) and never lets the hand go down until it is within ``over_m`` (m) of it. There it
    lowers it, fast (``gain``, ``max_speed``) down to :data:`LANDING_M` above the height it
    was picked at, then at ``lower_speed`` (m/s) until the grip reflex feels the support and
    lets go.
    """

    def __init__(
        self,
        gain: float,
        max_speed: float,
        engage_m: float,
        min_cosine: float,
        over_m: float,
        lower_speed: float,
    ):
        self.gain, self.max_speed = gain, max_speed
        self.engage_m, self.min_cosine = engage_m, min_cosine
        self.over_m, self.lower_speed = over_m, lower_speed
        self.reset()

    def reset(self) -> None:
        self._sum, self._count = np.zeros(3), 0
        #: Whether readings are still taken (until the first touch).
        self.armed = True
        self.idle()

    def idle(self) -> None:
        """The hand carries nothing this tick: the next carry starts from where it takes hold."""
        self.engaged = False
        self._pick_xy: np.ndarray | None = None

    def see(self, reading: np.ndarray) -> None:
        """Add one reading (presence logit, x, y) of a frame taken while still armed."""
        if self.armed:
            self._sum += reading
            self._count += 1

    @property
    def pad_xy(self) -> np.ndarray | None:
        """The estimated pad centre (x, y) (m), or None when no pad has been seen."""
        if not self._count or self._sum[0] <= 0.0:
            return None
        return self._sum[1:] / self._count

    def __call__(
        self, action: Action, observation: Observation, carrying: bool, pick_z: float | None = None
    ) -> Action:
        """``action`` steered over the pad and down once engaged (see the class doc);
        ``carrying``: whether the hand holds an object it has found carried; ``pick_z``: the
        hand's height (m) when it took hold (None: unknown)."""
        if self.armed:
            self.armed = float(np.abs(observation.tactile).max()) <= TOUCH
        pad = self.pad_xy if carrying else None
        if pad is None:
            self.idle()
            return action
        hand = observation.proprio[_XY].astype(np.float64)
        if self._pick_xy is None:
            self._pick_xy = hand.copy()
        self.engaged = self.engaged or self._heading_for(pad, hand)
        if not self.engaged:
            return action
        to_go = pad - hand
        velocity = action.ee_velocity.copy()
        # two ufuncs: np.clip on a handful of numbers costs 5-15 us a call (README, Tracker)
        velocity[:2] = np.minimum(np.maximum(self.gain * to_go, -self.max_speed), self.max_speed)
        if float(np.hypot(*to_go)) <= self.over_m:
            velocity[2] = -self._lowering_speed(float(observation.proprio[_Z]), pick_z)
        else:
            velocity[2] = max(float(velocity[2]), 0.0)
        return Action(velocity, action.gripper, action.timestamp)

    def _lowering_speed(self, z: float, pick_z: float | None) -> float:
        """Down at ``lower_speed``, faster (up to ``max_speed``, ``gain`` m/s per m) while more
        than LANDING_M above the height the object was picked at: the support is about as
        high as the one it came from."""
        if pick_z is None:
            return self.lower_speed
        return min(max(self.gain * (z - pick_z - LANDING_M), self.lower_speed), self.max_speed)

    def _heading_for(self, pad: np.ndarray, hand: np.ndarray) -> bool:
        """Whether the carry so far has gone ``engage_m`` across, toward the pad."""
        moved, wanted = hand - self._pick_xy, pad - self._pick_xy
        moved_m, wanted_m = float(np.hypot(*moved)), float(np.hypot(*wanted))
        if moved_m < self.engage_m or wanted_m < self.engage_m:
            return False
        return float(moved @ wanted) >= self.min_cosine * moved_m * wanted_m
