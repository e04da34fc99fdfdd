"""Tiny synthetic datasets for the planner: a square that moves the way the instruction says."""

from pathlib import Path

import numpy as np
import pytest

from dualctl.data.episode import Episode, write_dataset_info, write_episode
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE

DIRECTIONS = {"move the square right": (0, 1), "move the square down": (1, 0)}


def square_episode(seed: int, instruction: str, steps: int = 40, size: int = 16) -> Episode:
    """A bright square on a dark background moving 1 px per 2 steps along the instruction's
    direction; proprio carries its position."""
    rng = np.random.default_rng(seed)
    dy, dx = DIRECTIONS[instruction]
    y0, x0 = rng.integers(2, 5, size=2)
    frames = np.zeros((steps, size, size, 3), np.uint8)
    frames[..., 2] = 40
    proprio = np.zeros((steps, PROPRIO_DIM), np.float32)
    for t in range(steps):
        y, x = min(y0 + dy * t // 4, size - 4), min(x0 + dx * t // 4, size - 4)
        frames[t, y : y + 4, x : x + 4] = (230, 200, 40)
        proprio[t, :2] = (x / size, y / size)
    return Episode(
        images={"scene": frames},
        proprio=proprio,
        wrench=np.zeros((steps, 6), np.float32),
        tactile=np.zeros((steps, *TACTILE_SHAPE), np.float32),
        action=np.zeros((steps, ACTION_DIM), np.float32),
        timestamp=np.arange(steps) / 20.0,
        meta={"task": "Squares", "instruction": instruction, "seed": seed, "success": True},
    )


def write_square_dataset(root: Path, episodes: int, steps: int = 40, size: int = 16) -> Path:
    write_dataset_info(root, {"cameras": ["scene"], "rate_hz": 20.0})
    for seed in range(episodes):
        instruction = list(DIRECTIONS)[seed % len(DIRECTIONS)]
        episode = square_episode(seed, instruction, steps, size)
        write_episode(root / "episodes" / f"squares_{seed:03d}.npz", episode)
    return root


@pytest.fixture(scope="session")
def square_dataset(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("squares"), episodes=6)


def tiny_config(**train):
    """A planner small enough to train in seconds on the 16x16 squares."""
    from dualctl.planner.config import (
        AutoencoderConfig,
        DenoiserConfig,
        PlannerConfig,
        PlannerTrainConfig,
    )

    schedule = dict(autoencoder_steps=4, autoencoder_batch=16, steps=4, batch_size=8)
    schedule.update(train)
    return PlannerConfig(
        autoencoder=AutoencoderConfig(latent_channels=4, width=8),
        denoiser=DenoiserConfig(width_high=8, width_low=16, blocks=1, heads=2, embed_dim=16),
        train=PlannerTrainConfig(**schedule),
    )


@pytest.fixture(scope="session")
def tiny_planner_config():
    return tiny_config


@pytest.fixture(scope="session")
def trained(square_dataset, tmp_path_factory):
    """(run folder, checkpoint folder) of a real `train_planner` run on the squares."""
    from dualctl.config import TrainerConfig
    from dualctl.planner.train import train_planner

    run = tmp_path_factory.mktemp("planner_run")
    export = run / "checkpoint"
    train_planner(square_dataset, run, export, tiny_config(), TrainerConfig(threads=1), seed=0)
    return run, export
