"""``dualctl train hand-pose data=<dataset>``: the hand-pose reader
(:mod:`dualctl.tracker.hand_pose`) fit with Lightning on every frame of the dataset, labelled
with the hand position recorded with it; seeded, resumable (``last.ckpt`` in the run folder),
then written to ``tracker.hand_pose.export``. Reports the validation episodes' median error.

Half of each batch is blurred (a 3x3 box filter, once or twice): the reader runs on the
planner's imagined frames, which are softer than the camera's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.nn import functional

from dualctl.config import TrainerConfig
from dualctl.data.dataset import EpisodeStore
from dualctl.tracker.config import HandPoseConfig
from dualctl.tracker.hand_pose import HAND_XYZ, SCALE_M, STEM, HandPoseNet
from dualctl.tracker.model import images_to_float
from dualctl.tracker.reader_train import ReaderRecipe, frame_loader, train_reader


def episode_rows(store: EpisodeStore, episodes: list[int]) -> np.ndarray:
    """Indices into ``store.arrays`` of every frame of the given episodes."""
    rows = [np.arange(store.starts[i], store.starts[i] + store.lengths[i]) for i in episodes]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def soften(images: torch.Tensor) -> torch.Tensor:
    """The first half of ``images`` blurred by a 3x3 box filter once, the next quarter twice."""
    out, half, quarter = images.clone(), len(images) // 2, len(images) // 4
    out[:half] = functional.avg_pool2d(images[:half], 3, 1, 1, count_include_pad=False)
    out[:quarter] = functional.avg_pool2d(out[:quarter], 3, 1, 1, count_include_pad=False)
    return out


def place_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on (x, y, z) in units of SCALE_M."""
    return (predicted - target).abs().sum(1).mean() / SCALE_M


class HandPoseLightning(pl.LightningModule):
    """:func:`place_loss` on frames half of which are :func:`soften` ed."""

    def __init__(self, net: HandPoseNet, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        frames, target = batch
        images = soften(images_to_float(frames, self.net.config.image_size))
        loss = place_loss(self.net(images), target)
        self.log("train/place_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        frames, target = batch
        predicted = self.net(images_to_float(frames, self.net.config.image_size))
        self.log("val/loss", place_loss(predicted, target), prog_bar=True)
        self.log("val/median_error_m", (predicted - target).norm(dim=1).median())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-4)


def labels(store: EpisodeStore, rows: np.ndarray) -> np.ndarray:
    """The recorded hand position (x, y, z) of the given frames."""
    return store.arrays["proprio"][rows][:, HAND_XYZ]


@torch.no_grad()
def median_errors(net: HandPoseNet, store: EpisodeStore, rows: np.ndarray) -> dict:
    """Median hand-position error (m) of ``net`` on the given frames, in all and in height,
    on the frames as they are and blurred once."""
    net.eval()
    errors, soft_errors = [], []
    for frames, target in frame_loader(store.arrays["frames"][rows], labels(store, rows), 256,
                                       False, 0):  # fmt: skip
        images = images_to_float(frames, net.config.image_size)
        errors.append(net(images) - target)
        blurred = functional.avg_pool2d(images, 3, 1, 1, count_include_pad=False)
        soft_errors.append(net(blurred) - target)
    error, soft = torch.cat(errors), torch.cat(soft_errors)
    return {
        "val_median_error_m": float(error.norm(dim=1).median()),
        "val_median_z_error_m": float(error[:, 2].abs().median()),
        "val_median_error_blurred_m": float(soft.norm(dim=1).median()),
    }


def unfit(store: EpisodeStore, rows: np.ndarray) -> str:
    return "" if len(rows) else "has no frames to learn the hand from"


RECIPE = ReaderRecipe(STEM, HandPoseNet, HandPoseLightning, episode_rows, labels,
                      median_errors, unfit)  # fmt: skip


def train_hand_pose(
    config: HandPoseConfig, data: Path, run_dir: Path, seed: int, trainer_config: TrainerConfig
) -> dict:
    """Fit the reader on ``data``; write it to ``config.export``; returns the summary."""
    return train_reader(RECIPE, config, data, run_dir, seed, trainer_config)
