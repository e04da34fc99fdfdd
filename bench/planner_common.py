"""Shared pieces of the planner benches: held-out clips, small probes trained on real frames,
and result writing. Run the benches from the repository root."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dualctl.data.episode import atomic_write_text
from dualctl.planner.clips import (
    PlannerEpisodes,
    frame_stride,
    future_indices,
    load_episodes,
    start_steps,
)

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Clips:
    """Start frames with their true futures. Shapes: frame (N, H, W, 3), future (N, K, H, W, 3),
    proprio (N, P), future_proprio (N, K, P)."""

    frame: np.ndarray
    future: np.ndarray
    proprio: np.ndarray
    future_proprio: np.ndarray
    instruction: list[str]
    task: list[str]
    episode: list[int]
    t: np.ndarray


def make_clips(data: PlannerEpisodes, horizon: int, horizon_s: float, per_episode: int) -> Clips:
    """``per_episode`` start steps spread evenly over each episode's valid starts."""
    stride = frame_stride(horizon, horizon_s, data.frame_dt)
    rows = []
    for e, frames in enumerate(data.frames):
        starts = start_steps(len(frames), stride)
        picks = np.unique(np.linspace(0, len(starts) - 1, per_episode).round().astype(int))
        for t in starts[picks]:
            future = future_indices(int(t), len(frames), horizon, stride)
            rows.append((e, int(t), future))
    return Clips(
        frame=np.stack([data.frames[e][t] for e, t, _ in rows]),
        future=np.stack([data.frames[e][f] for e, _, f in rows]),
        proprio=np.stack([data.proprio[e][t] for e, t, _ in rows]),
        future_proprio=np.stack([data.proprio[e][f] for e, _, f in rows]),
        instruction=[data.instructions[e] for e, _, _ in rows],
        task=[data.tasks[e] for e, _, _ in rows],
        episode=[e for e, _, _ in rows],
        t=np.array([t for _, t, _ in rows]),
    )


def imagine_all(planner, frames, proprio, instructions, batch: int = 16) -> np.ndarray:
    out = []
    for i in range(0, len(frames), batch):
        out.append(
            planner.imagine(
                frames[i : i + batch], proprio[i : i + batch], instructions[i : i + batch]
            )
        )
    return np.concatenate(out)


class SmallCNN(nn.Module):
    """A frame (stack) -> vector network for probes and classifiers."""

    def __init__(self, in_channels: int, outputs: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(64, 64, 4, 2, 1), nn.SiLU(),
            nn.Flatten(), nn.LazyLinear(128), nn.SiLU(), nn.Linear(128, outputs),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


def as_input(frames: np.ndarray) -> torch.Tensor:
    """(N, ..., H, W, 3) uint8 -> (N, C, H, W) float, frames stacked along channels."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 255.0
    x = x.movedim(-1, -3)
    return x.reshape(x.shape[0], -1, *x.shape[-2:])


def fit(model, inputs: torch.Tensor, targets: torch.Tensor, steps: int, classify: bool, seed=0):
    """Adam on random mini-batches; returns the model in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    model(inputs[:2])  # materialise the lazy layer
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        index = torch.randint(len(inputs), (64,), generator=generator)
        out = model(inputs[index])
        if classify:
            loss = F.cross_entropy(out, targets[index])
        else:
            loss = F.mse_loss(out, targets[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def predict(model, inputs: torch.Tensor, batch: int = 256) -> torch.Tensor:
    return torch.cat([model(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])


def load(datasets: str, camera: str, limit: int | None) -> PlannerEpisodes:
    """The episodes of one dataset folder or of several, comma-separated (``limit`` each)."""
    parts = [load_episodes(Path(d.strip()), camera, limit) for d in datasets.split(",")]
    merged = parts[0]
    for part in parts[1:]:
        for name in ("frames", "proprio", "instructions", "tasks", "names"):
            getattr(merged, name).extend(getattr(part, name))
    return merged


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {"name": name, "when": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv, **result}
    path = RESULTS / f"{name}.json"
    atomic_write_text(path, json.dumps(result, indent=2))
    return path
