"""Pictures of plans: an image strip (current frame, one or more plans, ground-truth future) and a
gif."""

from __future__ import annotations

import io
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from dualctl.data.episode import atomic_write_bytes

#: Grey gap between tiles, px (at display scale).
GAP = 2


def _upscale(frames: np.ndarray, scale: int) -> np.ndarray:
    return frames.repeat(scale, axis=-3).repeat(scale, axis=-2)


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    height = tiles[0].shape[0]
    gap = np.full((height, GAP, 3), 128, np.uint8)
    parts = [part for tile in tiles for part in (tile, gap)][:-1]
    return np.concatenate(parts, axis=1)


def strip_image(current: np.ndarray, plans: list[np.ndarray], truth: np.ndarray, scale: int = 2):
    """One row per plan (current | plan frames), then (current | true future frames), uint8
    RGB."""
    current, truth = _upscale(current, scale), _upscale(truth, scale)
    rows = [_row([current, *_upscale(plan, scale)]) for plan in plans]
    rows.append(_row([current, *truth]))
    gap = np.full((GAP, rows[0].shape[1], 3), 128, np.uint8)
    return np.concatenate([part for row in rows for part in (row, gap)][:-1], axis=0)


def gif_frames(current: np.ndarray, plans: list[np.ndarray], truth: np.ndarray, scale: int = 2):
    """One frame per horizon step: current | each plan's frame k | truth_k."""
    current = _upscale(current, scale)
    steps = zip(*(_upscale(plan, scale) for plan in plans), _upscale(truth, scale))
    return np.stack([_row([current, *tiles]) for tiles in steps])


def write_png(path: Path, image: np.ndarray) -> None:
    buffer = io.BytesIO()
    iio.imwrite(buffer, image, extension=".png")
    atomic_write_bytes(path, lambda f: f.write(buffer.getvalue()))


def write_gif(path: Path, frames: np.ndarray, seconds_per_frame: float) -> None:
    buffer = io.BytesIO()
    iio.imwrite(buffer, frames, extension=".gif", duration=seconds_per_frame * 1000.0, loop=0)
    atomic_write_bytes(path, lambda f: f.write(buffer.getvalue()))
