"""Frame strips for the README: eight scene-camera frames of one expert episode per task,
written to docs/sim/<task>.png.

    MUJOCO_GL=egl python bench/sim_frames.py
"""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import imageio.v2 as imageio  # noqa: E402
import numpy as np  # noqa: E402
from dualctl.sim.config import SimConfig  # noqa: E402
from dualctl.sim.experts import run_expert  # noqa: E402
from dualctl.sim.tasks import TASKS  # noqa: E402

from dualctl.data.episode import atomic_write_bytes  # noqa: E402

FRAMES = 8
SCALE = 2


def strip(task: str, seed: int = 1) -> np.ndarray:
    episode = run_expert(task, seed, "train", SimConfig())
    frames = episode.images["scene"]
    picks = np.linspace(0, len(frames) - 1, FRAMES).round().astype(int)
    row = np.concatenate([np.pad(frames[i], ((0, 0), (0, 2), (0, 0)), constant_values=255)
                          for i in picks], axis=1)  # fmt: skip
    return row.repeat(SCALE, axis=0).repeat(SCALE, axis=1)


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "docs" / "sim"
    for task in TASKS:
        buffer = io.BytesIO()
        imageio.imwrite(buffer, strip(task), format="png")
        atomic_write_bytes(out / f"{task.lower()}.png", lambda f, b=buffer: f.write(b.getvalue()))
        print(out / f"{task.lower()}.png")


if __name__ == "__main__":
    main()
