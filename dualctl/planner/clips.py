"""The planner's view of a dataset: per-episode camera frames, proprio and instruction, and the
(current frame, K future frames) clips the diffusion model learns from.

A plan's frame k (1-based) shows the world ``k * horizon_s / horizon`` seconds ahead, i.e.
``k * stride`` recorded steps ahead. Futures past the episode's end repeat its last frame: the
world stays as the episode left it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from dualctl.data.episode import episode_paths, read_episode
from dualctl.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class PlannerEpisodes:
    """What the planner uses of each episode of a dataset.

    Attributes:
        frames: per episode, (T, H, W, 3) uint8 images of the planner's camera.
        proprio: per episode, (T, PROPRIO_DIM) float32.
        instructions: per episode, the task instruction.
        tasks: per episode, the task name.
        frame_dt: s between recorded steps.
        names: per episode, its file name.
    """

    frames: list[np.ndarray]
    proprio: list[np.ndarray]
    instructions: list[str]
    tasks: list[str]
    frame_dt: float
    names: list[str]

    def __len__(self) -> int:
        return len(self.frames)


def load_episodes(dataset: Path, camera: str, limit: int | None = None) -> PlannerEpisodes:
    """Read every episode of ``dataset`` (or the first ``limit``) that records ``camera``."""
    paths = episode_paths(dataset)[:limit]
    if not paths:
        raise DataError(f"dataset {dataset} has no episodes; make some with `dualctl collect`")
    frames, proprio, instructions, tasks, steps, names = [], [], [], [], [], []
    for path in paths:
        episode = read_episode(path)
        if camera not in episode.images:
            raise DataError(
                f"{path}: no images of camera '{camera}' (has {sorted(episode.images)}); "
                "set planner.camera to one of those"
            )
        frames.append(episode.images[camera])
        proprio.append(episode.proprio.astype(np.float32))
        instructions.append(str(episode.meta.get("instruction", "")))
        tasks.append(str(episode.meta.get("task", "")))
        steps.append(np.diff(episode.timestamp))
        names.append(path.name)
    frame_dt = float(np.median(np.concatenate(steps)))
    log.info("loaded %d episodes from %s (%.3f s per step)", len(paths), dataset, frame_dt)
    return PlannerEpisodes(frames, proprio, instructions, tasks, frame_dt, names)


def frame_stride(horizon: int, horizon_s: float, frame_dt: float) -> int:
    """Recorded steps between consecutive plan frames."""
    return max(1, round(horizon_s / horizon / frame_dt))


def future_indices(t: int, length: int, horizon: int, stride: int) -> np.ndarray:
    """Step indices of the K future frames after step ``t`` of an episode of ``length`` steps."""
    return np.minimum(t + stride * np.arange(1, horizon + 1), length - 1)


def start_steps(length: int, stride: int) -> np.ndarray:
    """Steps a clip may start at: every step with at least one real future frame."""
    return np.arange(max(1, length - stride))


def weighted_start_steps(length: int, stride: int, early_steps: int, repeat: int) -> np.ndarray:
    """:func:`start_steps`, with the first ``early_steps`` listed ``repeat`` times."""
    steps = start_steps(length, stride)
    early = steps[:early_steps]
    return np.concatenate([np.repeat(early, repeat), steps[early_steps:]])


class FrameDataset(Dataset):
    """Single frames (every ``every``-th step) for the autoencoder, as (H, W, 3) uint8 tensors."""

    def __init__(self, frames: list[np.ndarray], every: int):
        self.frames = torch.from_numpy(np.concatenate([f[::every] for f in frames]))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.frames[index]


class ClipDataset(Dataset):
    """(current latent, normalised future-latent changes, proprio, instruction index) clips.

    Args:
        latents: per episode, (T, C, h, w) normalised latents.
        proprio: per episode, (T, P) normalised proprio.
        text_index: per episode, the row of its instruction in the embedding table.
        delta_std: (K, C) scale of the latent change at each horizon step.
        early_steps, early_repeat: clips starting at an episode's first ``early_steps`` steps
            are listed ``early_repeat`` times (see ``PlannerTrainConfig.start_repeat``).
    """

    def __init__(
        self,
        latents,
        proprio,
        text_index,
        delta_std,
        horizon: int,
        stride: int,
        early_steps: int = 0,
        early_repeat: int = 1,
    ):
        self.latents, self.proprio, self.text_index = latents, proprio, text_index
        self.delta_std = delta_std[:, :, None, None]
        self.horizon, self.stride = horizon, stride
        self.index = np.array([
            (e, t)
            for e, z in enumerate(latents)
            for t in weighted_start_steps(len(z), stride, early_steps, early_repeat)
        ])  # fmt: skip

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        episode, t = (int(v) for v in self.index[item])
        latents = self.latents[episode]
        future = future_indices(t, len(latents), self.horizon, self.stride)
        current = latents[t].float()
        delta = (latents[torch.from_numpy(future)].float() - current) / self.delta_std
        return {
            "current": current,
            "delta": delta,
            "proprio": self.proprio[episode][t],
            "text_index": torch.tensor(self.text_index[episode]),
        }
