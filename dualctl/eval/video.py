"""Rollout videos of ablation episodes (H.264 MP4 through imageio's ffmpeg)."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v2 as imageio
import numpy as np


def write_rollout(path: Path, frames: list[np.ndarray], fps: float, scale: int = 4) -> Path:
    """Write ``frames`` ((H, W, 3) uint8 each) upscaled ``scale`` times (nearest neighbour),
    to a temp file renamed into place, so a killed run never leaves half a video."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        with imageio.get_writer(tmp, fps=fps, codec="libx264", macro_block_size=1) as writer:
            for frame in frames:
                writer.append_data(np.repeat(np.repeat(frame, scale, axis=0), scale, axis=1))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
