"""A tiny synthetic dataset: a coloured square on the image moves by the commanded velocity,
so a world model that reads actions can beat copying the last latent, and the recorded gripper
force follows the tactile signal, so the head has something to learn from touch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE

SIZE = 32
RATE_HZ = 20.0


def synthetic_episode(seed: int, steps: int = 40, task: str = "Lift") -> Episode:
    rng = np.random.default_rng(seed)
    position = rng.uniform(8, SIZE - 8, 2)
    velocity = np.zeros(2)
    frames = np.zeros((steps, SIZE, SIZE, 3), np.uint8)
    proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
    action = np.zeros((steps, ACTION_DIM), np.float32)
    tactile = np.zeros((steps, *TACTILE_SHAPE), np.float32)
    wrench = rng.normal(0, 0.1, (steps, 6)).astype(np.float32)
    for t in range(steps):
        velocity = 0.7 * velocity + rng.normal(0, 1.5, 2)
        velocity = np.clip(velocity, -3, 3)
        x, y = np.clip(position, 3, SIZE - 4).astype(int)
        frames[t, y - 3 : y + 3, x - 3 : x + 3] = (230, 40, 40)
        frames[t, :4, :, 1] = 80  # a fixed "table edge" so not everything moves
        touch = float(rng.uniform(0, 5))
        tactile[t, ..., 0] = touch
        proprio[t, :2] = position / SIZE
        action[t, :2] = velocity * 0.01
        action[t, 4:] = (0.04, 0.05, 20.0 + 10.0 * touch)
        position = np.clip(position + velocity, 3, SIZE - 4)
    meta = {"task": task, "seed": seed, "split": "train", "success": True}
    timestamp = np.arange(steps) / RATE_HZ
    return Episode({"scene": frames}, proprio, wrench, tactile, action, timestamp, meta)


def write_synthetic_dataset(folder: Path, episodes: int, steps: int = 40) -> Path:
    write_dataset_info(folder, {"cameras": {"scene": [SIZE, SIZE]}, "camera_hz": RATE_HZ})
    for i in range(episodes):
        task = ("Lift", "Fragile")[i % 2]
        write_episode(folder / "episodes" / f"{i:04d}.npz", synthetic_episode(i, steps, task))
    return folder


@pytest.fixture(scope="session")
def synthetic_dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"), episodes=12)


#: Overrides that shrink the model and the run to seconds on a CPU.
SMALL = [
    "tracker.image_size=32",
    "tracker.latent_dim=16",
    "tracker.hidden_dim=64",
    "tracker.sensor_dim=8",
    "tracker.lookahead_s=0.2",
    "tracker.train.batch_size=16",
    "tracker.train.val_episodes=2",
    "tracker.train.val_every=50",
    "tracker.train.shift_px=0",
    "tracker.tactile_history=2",
    "trainer.threads=1",
]
