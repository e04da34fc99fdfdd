"""Labels the sim knows and a robot does not, for auxiliary training losses only.

The object's yaw and place on the table are in each sim episode's metadata
(``variation.object_yaw``, ``variation.object_xy``) and hold while nothing has touched the
object: until the hand first closes or feels a contact. A tracker that
is made to read it from its camera latent can turn the gripper to the object's faces; nothing
in the world-model or cloning losses asks the latent to carry it (the object does not move
before the grasp, and a yaw rate is a small part of an action).
"""

from __future__ import annotations

import numpy as np

from dualctl.types import GRIPPER_STROKE_M, PROPRIO_FIELDS

#: The object's yaw is encoded as (sin, cos) of QUARTER_TURNS x yaw: a box looks (and is
#: grasped) the same every quarter turn.
QUARTER_TURNS = 4
#: A hand narrower than this (m), a taxel reading above TOUCH (N) or a wrist force above
#: WRIST_N (N) means the object may have been moved from its recorded pose.
OPEN_WIDTH_M = GRIPPER_STROKE_M - 0.005
TOUCH, WRIST_N = 0.05, 3.0
_WIDTH = PROPRIO_FIELDS.index("width")


def object_yaw_labels(
    meta: dict, proprio: np.ndarray, tactile: np.ndarray, wrench: np.ndarray
) -> np.ndarray:
    """(T, 3) float32: sin and cos of 4 x the object's yaw, and 1 where that yaw is known
    (before the first close or contact of the episode), else 0 (and 0 everywhere when the
    metadata holds no object yaw, e.g. real-robot data)."""
    labels = np.zeros((len(proprio), 3), np.float32)
    yaw = (meta.get("variation") or {}).get("object_yaw")
    if yaw is None:
        return labels
    labels[:, 0] = np.sin(QUARTER_TURNS * yaw)
    labels[:, 1] = np.cos(QUARTER_TURNS * yaw)
    labels[: untouched_steps(proprio, tactile, wrench), 2] = 1.0
    return labels


def object_xy_labels(
    meta: dict, proprio: np.ndarray, tactile: np.ndarray, wrench: np.ndarray
) -> np.ndarray:
    """(T, 3) float32: the object's x and y on the table (m, world frame), and 1 where that
    place is known (before the first close or contact), else 0 (0 everywhere without one)."""
    labels = np.zeros((len(proprio), 3), np.float32)
    xy = (meta.get("variation") or {}).get("object_xy")
    if xy is None:
        return labels
    labels[:, :2] = xy
    labels[: untouched_steps(proprio, tactile, wrench), 2] = 1.0
    return labels


def pad_labels(
    meta: dict, proprio: np.ndarray, tactile: np.ndarray, wrench: np.ndarray
) -> np.ndarray:
    """(T, 4) float32: the target pad's x and y on the table (m, world frame; 0 without a pad),
    1 where the scene holds a pad, and 1 where the frame shows the table untouched (before the
    first close or contact, when nothing but the pad is low on the table), else 0 (0
    everywhere when the metadata holds no sim variation, e.g. real-robot data)."""
    labels = np.zeros((len(proprio), 4), np.float32)
    variation = meta.get("variation")
    if not variation:
        return labels
    pad = variation.get("pad_xy")
    if pad is not None:
        labels[:, :2] = pad
        labels[:, 2] = 1.0
    labels[: untouched_steps(proprio, tactile, wrench), 3] = 1.0
    return labels


def untouched_steps(proprio: np.ndarray, tactile: np.ndarray, wrench: np.ndarray) -> int:
    """How many first steps of an episode come before the hand first narrows, feels a taxel
    or a wrist force: the steps the object is still where the episode placed it."""
    touched = (
        (proprio[:, _WIDTH] < OPEN_WIDTH_M)
        | (np.abs(tactile).reshape(len(tactile), -1).max(1) > TOUCH)
        | (np.linalg.norm(wrench[:, :3], axis=1) > WRIST_N)
    )
    return len(proprio) if not touched.any() else int(np.argmax(touched))


def face_yaw(sin4: np.ndarray, cos4: np.ndarray) -> np.ndarray:
    """The object face yaw (rad, in [-pi/4, pi/4]) nearest zero from (sin, cos) of 4 x yaw:
    the gripper yaw the sim expert grasps at."""
    return np.arctan2(sin4, cos4) / QUARTER_TURNS
