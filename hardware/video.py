"""USB video devices through OpenCV (the ``camera`` extra): the scene camera and the gel camera of
a DIGIT-style tactile sensor share this reader.

OpenCV's ``read()`` blocks for a frame period, so it runs in a worker thread and the asyncio
loop only awaits it; a device that stops delivering raises after a bounded wait.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from dataclasses import dataclass

import numpy as np
from dualctl.hardware.device_errors import DeviceError, LinkTimeout


def _cv2():
    try:
        return importlib.import_module("cv2")
    except ImportError:
        raise DeviceError(
            "OpenCV is not installed, but a camera or tactile sensor is enabled in the hardware "
            "config; install the extra with `pip install 'dualctl[camera]'` or set "
            "hardware.camera.enabled=false hardware.tactile.enabled=false"
        ) from None


@dataclass(frozen=True)
class Frame:
    """An RGB image (H, W, 3) uint8 and its arrival time.monotonic() (s)."""

    image: np.ndarray
    stamp: float


def to_rgb(image_bgr: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV's BGR frame -> RGB uint8 (height, width, 3), nearest-neighbour resized."""
    if image_bgr.ndim == 2:
        image_bgr = np.repeat(image_bgr[:, :, None], 3, axis=2)
    rows = (np.arange(height) * image_bgr.shape[0] / height).astype(int)
    cols = (np.arange(width) * image_bgr.shape[1] / width).astype(int)
    return np.ascontiguousarray(image_bgr[rows][:, cols, ::-1], dtype=np.uint8)


class VideoDevice:
    """One OpenCV capture device delivering (height, width) RGB frames.

    Args:
        device: an index ("0") or a path ("/dev/video2").
        width, height: the size delivered (also asked of the device).
        fps: frame rate asked of the device (Hz).
        timeout_s: longest wait for one frame.
    """

    def __init__(self, device: str, width: int, height: int, fps: float, timeout_s: float = 1.0):
        self.device, self.width, self.height, self.fps = device, width, height, fps
        self.timeout_s = timeout_s
        self._capture = None

    async def open(self) -> None:
        cv2 = _cv2()
        source = int(self.device) if self.device.isdigit() else self.device
        capture = await asyncio.to_thread(cv2.VideoCapture, source)
        if not capture.isOpened():
            raise DeviceError(
                f"video device {self.device!r} cannot be opened; check `v4l2-ctl --list-devices` "
                "and the device setting in the hardware config"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        capture.set(cv2.CAP_PROP_FPS, self.fps)
        self._capture = capture

    async def read(self) -> Frame:
        if self._capture is None:
            raise DeviceError(f"video device {self.device!r} is not open")
        try:
            ok, image = await asyncio.wait_for(
                asyncio.to_thread(self._capture.read), self.timeout_s
            )
        except TimeoutError:
            raise LinkTimeout(
                f"video device {self.device!r} delivered no frame in {self.timeout_s} s"
            ) from None
        if not ok:
            raise DeviceError(f"video device {self.device!r} failed to deliver a frame")
        return Frame(to_rgb(image, self.height, self.width), time.monotonic())

    async def close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            await asyncio.to_thread(capture.release)


class ReplayCamera:
    """A camera that plays recorded frames back at ``fps``, looping: the scene camera of a dry
    run, where no real camera is attached. Same interface as :class:`VideoDevice`.

    Args:
        frames: (T, H, W, 3) uint8 RGB frames, e.g. a recorded episode's ``images["scene"]``.
        fps: playback rate (Hz).
    """

    def __init__(self, frames: np.ndarray, fps: float):
        if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or not len(frames):
            raise DeviceError(f"replay frames: expected (T, H, W, 3) uint8, got {frames.shape}")
        self.frames, self.fps = frames, fps
        self.height, self.width = frames.shape[1:3]
        self._started: float | None = None

    async def open(self) -> None:
        self._started = time.monotonic()

    async def read(self) -> Frame:
        """The next frame, delivered on its own schedule (one every 1/fps s)."""
        if self._started is None:
            raise DeviceError("replay camera is not open")
        index = int((time.monotonic() - self._started) * self.fps) + 1
        await asyncio.sleep(max(0.0, self._started + index / self.fps - time.monotonic()))
        return Frame(self.frames[index % len(self.frames)], time.monotonic())

    async def close(self) -> None:
        self._started = None
