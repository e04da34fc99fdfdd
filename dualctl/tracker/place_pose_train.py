"""``dualctl train place-pose data=<dataset>``: the place-pose reader
(:mod:`dualctl.tracker.place_pose`) fit with Lightning on the frames before each episode's
first touch, labelled with whether its scene holds a target pad and where; seeded, resumable
(``last.ckpt`` in the run folder), then written to ``tracker.place_pose.export``. Reports the
validation episodes' presence accuracy and median place error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.nn import functional

from dualctl.config import TrainerConfig
from dualctl.data.dataset import EpisodeStore
from dualctl.tracker.config import PlacePoseConfig
from dualctl.tracker.model import images_to_float
from dualctl.tracker.place_pose import STEM, XY_SCALE, PlacePoseNet
from dualctl.tracker.reader_train import ReaderRecipe, predictions, train_reader


def untouched_frames(store: EpisodeStore, episodes: list[int]) -> np.ndarray:
    """Indices into ``store.arrays`` of the given episodes' frames before their first touch."""
    untouched = store.arrays["pad"][:, 3] > 0
    rows = [np.flatnonzero(untouched[store.slice(i)]) + store.starts[i] for i in episodes]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def presence_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of the presence logit against the (x, y, present) labels."""
    return functional.binary_cross_entropy_with_logits(predicted[:, 0], target[:, 2])


def place_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 on the pad's (x, y) in units of XY_SCALE, on frames that show a pad."""
    present = target[:, 2]
    error = (predicted[:, 1:] - target[:, :2]).abs().sum(1) / XY_SCALE
    return (error * present).sum() / present.sum().clamp(min=1.0)


def errors(predicted: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Presence accuracy and the median pad-place error (m) of frames that show a pad."""
    present = target[:, 2] > 0.5
    accuracy = ((predicted[:, 0] > 0) == present).float().mean()
    distance = (predicted[present, 1:] - target[present, :2]).norm(dim=1)
    median = distance.median() if len(distance) else torch.tensor(float("nan"))
    return {"presence_accuracy": float(accuracy), "median_xy_error_m": float(median)}


class PlacePoseLightning(pl.LightningModule):
    """:func:`presence_loss` plus :func:`place_loss`."""

    def __init__(self, net: PlacePoseNet, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch, batch_idx):
        frames, target = batch
        predicted = self.net(images_to_float(frames, self.net.config.image_size))
        presence, place = presence_loss(predicted, target), place_loss(predicted, target)
        self.log_dict({"train/presence_loss": presence, "train/place_loss": place}, prog_bar=True)
        return presence + place

    def validation_step(self, batch, batch_idx):
        frames, target = batch
        predicted = self.net(images_to_float(frames, self.net.config.image_size))
        self.log("val/loss", presence_loss(predicted, target) + place_loss(predicted, target),
                 prog_bar=True)  # fmt: skip
        self.log_dict({f"val/{k}": v for k, v in errors(predicted, target).items()})

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-4)


def labels(store: EpisodeStore, rows: np.ndarray) -> np.ndarray:
    """(x, y, present) of the target pad in the given frames."""
    return store.arrays["pad"][rows, :3]


def validation_errors(net: PlacePoseNet, store: EpisodeStore, rows: np.ndarray) -> dict:
    """:func:`errors` of ``net`` on the given frames, keys prefixed ``val_``."""
    predicted, target = predictions(net, store, rows, labels(store, rows))
    return {f"val_{k}": v for k, v in errors(predicted, target).items()}


def unfit(store: EpisodeStore, rows: np.ndarray) -> str:
    if len(rows) and store.arrays["pad"][rows, 2].any():
        return ""
    return ("has no frames of a scene with a target pad before a touch (sim episodes of Place "
            "record one in their metadata)")  # fmt: skip


RECIPE = ReaderRecipe(STEM, PlacePoseNet, PlacePoseLightning, untouched_frames, labels,
                      validation_errors, unfit)  # fmt: skip


def train_place_pose(
    config: PlacePoseConfig, data: Path, run_dir: Path, seed: int, trainer_config: TrainerConfig
) -> dict:
    """Fit the reader on ``data``; write it to ``config.export``; returns the summary."""
    return train_reader(RECIPE, config, data, run_dir, seed, trainer_config)
