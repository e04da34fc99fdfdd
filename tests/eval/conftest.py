"""Tiny untrained checkpoints (tracker, baseline, inverse dynamics) for tests that run whole
episodes: what they check is the machinery around the models, not the models' skill."""

from pathlib import Path

import numpy as np
import pytest
import torch

from dualctl.eval.baseline import ChunkPolicyNet, Normaliser, save_baseline
from dualctl.eval.config import BaselineConfig
from dualctl.tracker.checkpoint import save_checkpoint
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.model import TrackerNet
from dualctl.types import ACTION_DIM, PROPRIO_DIM


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory) -> list[str]:
    """Config overrides pointing the ablation at tiny random checkpoints."""
    torch.manual_seed(0)
    root = Path(tmp_path_factory.mktemp("models"))
    tracker = TrackerConfig(latent_dim=16, hidden_dim=32, sensor_dim=8)
    save_checkpoint(root / "tracker", TrackerNet(tracker, load_encoder_weights=False), tracker)
    norm = Normaliser(np.zeros(PROPRIO_DIM, np.float32), np.ones(PROPRIO_DIM, np.float32),
                      np.zeros(ACTION_DIM, np.float32), np.full(ACTION_DIM, 0.02, np.float32))  # fmt: skip
    small = BaselineConfig(channels=[8, 8, 16, 16], hidden=32)
    save_baseline(root / "baseline", ChunkPolicyNet(small), small, norm, {"camera": "scene"})
    one = BaselineConfig(channels=[8, 8, 16, 16], hidden=32, chunk=1, execute=1)
    save_baseline(
        root / "inverse", ChunkPolicyNet(one), one, norm, {"camera": "scene", "gap_s": 0.25}
    )
    return [
        f"ablate.tracker_checkpoint={root / 'tracker'}",
        f"ablate.baseline.checkpoint={root / 'baseline'}",
        f"ablate.inverse_dynamics={root / 'inverse'}",
    ]
