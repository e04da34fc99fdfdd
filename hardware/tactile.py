"""A DIGIT-style tactile sensor: a camera looking at a lit gel, turned into taxel forces.

The mapping from a gel image to ``TACTILE_SHAPE`` is deliberately simple and documented:

1. a reference image of the untouched gel is taken at connect;
2. each new image's grey level is compared with it, and the absolute change is split into the
   4 x 4 taxel grid (rows along the finger, palm side first; columns across it);
3. a cell's normal force is its mean change (grey levels) times ``newtons_per_level``, a
   calibration a user fits by pressing a known weight on the gel;
4. a marker-less gel image does not measure shear, so both shear channels stay 0.

One sensor covers one finger (index ``finger``); the other finger's taxels read 0.
"""

from __future__ import annotations

import numpy as np
from dualctl.hardware.video import Frame, VideoDevice

from dualctl.types import TACTILE_SHAPE

_ROWS, _COLS = TACTILE_SHAPE[1], TACTILE_SHAPE[2]


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32).mean(axis=2)


def gel_to_taxels(image: np.ndarray, reference: np.ndarray, newtons_per_level: float) -> np.ndarray:
    """(H, W, 3) uint8 gel image and reference -> (rows, cols) normal forces (N)."""
    change = np.abs(_grey(image) - _grey(reference))
    h, w = change.shape
    rows = np.array_split(np.arange(h), _ROWS)
    cols = np.array_split(np.arange(w), _COLS)
    cells = [[change[np.ix_(r, c)].mean() for c in cols] for r in rows]
    return np.asarray(cells, np.float32) * newtons_per_level


def taxels_to_tactile(normal: np.ndarray, finger: int) -> np.ndarray:
    """Place one finger's (rows, cols) normal forces into a ``TACTILE_SHAPE`` array."""
    tactile = np.zeros(TACTILE_SHAPE, np.float32)
    tactile[finger, :, :, 0] = normal
    return tactile


class DigitTactile:
    """A gel camera on one fingertip, read through :class:`VideoDevice`.

    Args:
        video: the gel camera.
        finger: 0 (left) or 1 (right).
        newtons_per_level: N per grey level of change in a cell (a per-sensor calibration).
    """

    def __init__(self, video: VideoDevice, finger: int = 0, newtons_per_level: float = 0.05):
        self.video, self.finger, self.newtons_per_level = video, finger, newtons_per_level
        self.reference: np.ndarray | None = None

    async def open(self) -> None:
        """Open the camera and take the untouched gel as the reference (fingers must be empty)."""
        await self.video.open()
        self.reference = (await self.video.read()).image

    async def read(self) -> tuple[np.ndarray, float]:
        """``TACTILE_SHAPE`` forces (N) and the frame's time (s)."""
        frame: Frame = await self.video.read()
        normal = gel_to_taxels(frame.image, self.reference, self.newtons_per_level)
        return taxels_to_tactile(normal, self.finger), frame.stamp

    async def close(self) -> None:
        await self.video.close()
