"""Fingertip touch from MuJoCo contacts: each contact on a pad is split over the pad's 4x4
taxel grid by bilinear weights at its position, as a force (N) in the pad's own frame: normal
(pressing into the pad), shear along the finger (up the pad) and shear across it.

MuJoCo reports a flat face contact as a few points at the contact polygon's corners; bilinear
splatting turns those into a smooth pressure map whose total equals the contact force.
"""

from __future__ import annotations

import mujoco
import numpy as np
from dualctl.sim.scene import PAD_HALF

from dualctl.types import TACTILE_SHAPE

_ROWS, _COLS = TACTILE_SHAPE[1], TACTILE_SHAPE[2]


def pad_normal_forces(model, data, pad_geoms, object_geom) -> tuple[float, float]:
    """Total normal force (N) between each pad and the object. With elliptic friction cones the
    first constraint row of a contact is its normal force, so no per-contact call is needed."""
    n = data.ncon
    if n == 0:
        return (0.0, 0.0)
    geom = data.contact.geom[:n]
    normal = data.efc_force[data.contact.efc_address[:n]]
    touches_object = (geom == object_geom).any(axis=1)
    forces = []
    for pad in pad_geoms:
        mask = touches_object & (geom == pad).any(axis=1) & (data.contact.efc_address[:n] >= 0)
        forces.append(float(normal[mask].sum()))
    return (forces[0], forces[1])


def read_tactile(model, data, pad_geoms) -> np.ndarray:
    """``TACTILE_SHAPE`` float32 taxel forces (N): (finger, row along the finger from the palm
    side to the tip, column across the finger, [normal, shear_long, shear_lat])."""
    taxels = np.zeros(TACTILE_SHAPE, np.float32)
    wrench = np.zeros(6)
    for finger, pad in enumerate(pad_geoms):
        rotation = data.geom_xmat[pad].reshape(3, 3)  # columns: pad axes in world
        points, forces = [], []
        for i in range(data.ncon):
            contact = data.contact[i]
            if pad not in (contact.geom1, contact.geom2) or contact.efc_address < 0:
                continue
            mujoco.mj_contactForce(model, data, i, wrench)
            # The contact frame's rows are its axes; row 0 is the normal from geom1 to geom2.
            on_geom2 = wrench[:3] @ contact.frame.reshape(3, 3)
            on_pad = rotation.T @ (on_geom2 if contact.geom2 == pad else -on_geom2)
            points.append(rotation.T @ (contact.pos - data.geom_xpos[pad]))
            # Pad axes: x across the finger, y its thickness, z along it (up). The left pad's
            # inner face looks along -y, the right one's along +y: a squeeze pushes them apart.
            normal = on_pad[1] if finger == 0 else -on_pad[1]
            forces.append((max(0.0, normal), on_pad[2], on_pad[0]))
        if points:
            taxels[finger] = _pressure_map(np.array(points), np.array(forces))
    return taxels


def _pressure_map(points: np.ndarray, forces: np.ndarray) -> np.ndarray:
    """Spread each contact's force over the taxels inside the contact patch (the contacts'
    bounding box grown by half a taxel), weighted by closeness, keeping each total."""
    x, z = points[:, 0], points[:, 2]
    half_x, half_z = _PITCH_X / 2, _PITCH_Z / 2
    inside = (
        (x.min() - half_x <= _CX) & (x.max() + half_x >= _CX)
        & (z.min() - half_z <= _CZ) & (z.max() + half_z >= _CZ)
    )  # fmt: skip
    if not inside.any():
        nearest = np.argmin((_CX - x.mean()) ** 2 + (_CZ - z.mean()) ** 2)
        inside.flat[nearest] = True
    sigma_x = max(_PITCH_X, (x.max() - x.min()) / 2)
    sigma_z = max(_PITCH_Z, (z.max() - z.min()) / 2)
    grid = np.zeros(TACTILE_SHAPE[1:], np.float32)
    for (px, _, pz), force in zip(points, forces):
        weight = np.exp(-0.5 * (((_CX - px) / sigma_x) ** 2 + ((_CZ - pz) / sigma_z) ** 2))
        weight = weight * inside
        grid += (weight / weight.sum())[..., None] * force
    return grid


_PITCH_X = 2 * PAD_HALF[0] / _COLS
_PITCH_Z = 2 * PAD_HALF[2] / _ROWS
#: Taxel centres in the pad frame (m): row 0 at the palm side (top), column 0 at -x.
_CZ, _CX = np.meshgrid(
    PAD_HALF[2] - (np.arange(_ROWS) + 0.5) * _PITCH_Z,
    -PAD_HALF[0] + (np.arange(_COLS) + 0.5) * _PITCH_X,
    indexing="ij",
)
