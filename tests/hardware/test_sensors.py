"""Camera/tactile conversions (pure) and the clear error when OpenCV is missing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from dualctl.hardware.device_errors import DeviceError
from dualctl.hardware.tactile import gel_to_taxels, taxels_to_tactile
from dualctl.hardware.video import VideoDevice, to_rgb
from rigs import run

from dualctl.types import TACTILE_SHAPE, Observation


def test_bgr_frame_becomes_rgb_of_the_asked_size():
    bgr = np.zeros((480, 640, 3), np.uint8)
    bgr[..., 0] = 255  # blue in OpenCV's order
    rgb = to_rgb(bgr, 64, 96)
    assert rgb.shape == (64, 96, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 2] == 255).all() and (rgb[..., 0] == 0).all()


def test_a_press_on_the_gel_lights_up_the_taxels_under_it():
    reference = np.full((64, 48, 3), 100, np.uint8)
    pressed = reference.copy()
    pressed[:16, 36:] = 140  # top-right cell only: a 40 grey-level change
    normal = gel_to_taxels(pressed, reference, newtons_per_level=0.05)
    assert normal.shape == TACTILE_SHAPE[1:3]
    assert normal[0, 3] == pytest.approx(2.0)
    assert normal.sum() == pytest.approx(2.0)
    tactile = taxels_to_tactile(normal, finger=1)
    assert tactile.shape == TACTILE_SHAPE
    assert tactile[1, 0, 3, 0] == pytest.approx(2.0) and tactile[0].sum() == 0
    assert tactile[..., 1:].sum() == 0  # no shear from a marker-less gel
    Observation(0.0, {}, np.zeros(10), np.zeros(6), tactile)  # fits the shared type


@pytest.mark.skipif(importlib.util.find_spec("cv2") is not None, reason="OpenCV is installed")
def test_missing_opencv_is_a_clear_error():
    with pytest.raises(DeviceError, match=r"dualctl\[camera\]"):
        run(VideoDevice("0", 64, 64, 30.0).open())
