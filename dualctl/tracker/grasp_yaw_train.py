"""``dualctl train grasp-yaw data=<dataset>``: the grasp-yaw reader
(:mod:`dualctl.tracker.grasp_yaw`) fit with Lightning on the frames whose object yaw is known
(before the episode's first touch), seeded, resumable (``last.ckpt`` in the run folder), then
written to ``tracker.grasp_yaw.export``. Reports the validation episodes' median yaw error.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger
from torch.nn import functional

from dualctl.config import TrainerConfig
from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import atomic_write_text
from dualctl.data.privileged import QUARTER_TURNS
from dualctl.errors import DataError
from dualctl.tracker.config import GraspYawConfig
from dualctl.tracker.grasp_yaw import GraspYawNet, GraspYawNetConfig, save_grasp_yaw
from dualctl.tracker.lit import random_shift
from dualctl.tracker.model import images_to_float
from dualctl.tracker.train import split_episodes

log = logging.getLogger(__name__)


def known_frames(store: EpisodeStore, episodes: list[int]) -> np.ndarray:
    """Indices into ``store.arrays`` of the given episodes' frames with a known object yaw."""
    known = store.arrays["object_yaw"][:, 2] > 0
    rows = [np.flatnonzero(known[store.slice(i)]) + store.starts[i] for i in episodes]
    return np.concatenate(rows) if rows else np.zeros(0, np.int64)


def yaw_errors(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Object-yaw error (rad, in [0, pi/4]) between (sin, cos) of 4 x yaw vectors."""
    cosine = (functional.normalize(predicted, dim=1) * target).sum(1).clamp(-1.0, 1.0)
    return torch.arccos(cosine) / QUARTER_TURNS


class GraspYawLightning(pl.LightningModule):
    """Cosine loss between the predicted and the labelled (sin, cos) of 4 x yaw."""

    def __init__(self, net: GraspYawNet, lr: float):
        super().__init__()
        self.net, self.lr = net, lr

    def _batch(self, batch, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        frames, target = batch
        images = images_to_float(frames, self.net.config.image_size)
        if train:
            images = random_shift(images, 2, len(images))
        return self.net(images), target

    def training_step(self, batch, batch_idx):
        predicted, target = self._batch(batch, train=True)
        loss = 1.0 - (predicted * target).sum(1).mean()
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        predicted, target = self._batch(batch, train=False)
        self.log("val/loss", 1.0 - (predicted * target).sum(1).mean(), prog_bar=True)
        self.log("val/median_yaw_error_rad", yaw_errors(predicted, target).median())

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=1e-4)


def _loader(store: EpisodeStore, rows: np.ndarray, batch: int, shuffle: bool, seed: int):
    frames = torch.from_numpy(store.arrays["frames"][rows])
    labels = torch.from_numpy(store.arrays["object_yaw"][rows, :2])
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(frames, labels), batch_size=batch, shuffle=shuffle,
        generator=torch.Generator().manual_seed(seed), drop_last=shuffle,
    )  # fmt: skip


@torch.no_grad()
def median_error(net: GraspYawNet, store: EpisodeStore, rows: np.ndarray) -> float:
    """Median object-yaw error (rad) of ``net`` on the given frames."""
    net.eval()
    errors = [yaw_errors(net(images_to_float(f, net.config.image_size)), t)
              for f, t in _loader(store, rows, 256, False, 0)]  # fmt: skip
    return float(torch.cat(errors).median())


def train_grasp_yaw(
    config: GraspYawConfig, data: Path, run_dir: Path, seed: int, trainer_config: TrainerConfig
) -> dict:
    """Fit the reader on ``data``; write it to ``config.export``; returns the summary."""
    started = time.monotonic()
    torch.set_num_threads(trainer_config.threads)
    pl.seed_everything(seed, workers=True)
    store = EpisodeStore.load(data, camera=config.camera)
    train_ids, val_ids = split_episodes(len(store), config.val_episodes)
    train_rows, val_rows = known_frames(store, train_ids), known_frames(store, val_ids)
    if not len(train_rows):
        raise DataError(f"dataset {data} has no frames with a known object yaw (sim episodes "
                        "record it in their metadata; real ones do not)")  # fmt: skip
    net = GraspYawNet(
        GraspYawNetConfig(camera=config.camera, image_size=store.arrays["frames"].shape[1])
    )
    val = _loader(store, val_rows, 256, False, seed) if len(val_rows) else None
    trainer = pl.Trainer(
        accelerator=trainer_config.accelerator, devices=trainer_config.devices,
        strategy=trainer_config.strategy, max_steps=config.steps,
        max_time=datetime.timedelta(minutes=config.max_minutes), default_root_dir=run_dir,
        logger=CSVLogger(run_dir, name="logs"),
        callbacks=[ModelCheckpoint(dirpath=run_dir / "lightning", save_last=True,
                                   every_n_train_steps=250, enable_version_counter=False),
                   RichProgressBar()],
        log_every_n_steps=trainer_config.log_every_n_steps, val_check_interval=250,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_model_summary=False,
    )  # fmt: skip
    last = run_dir / "lightning" / "last.ckpt"
    module = GraspYawLightning(net, config.lr)
    train = _loader(store, train_rows, config.batch_size, True, seed)
    trainer.fit(module, train, val, ckpt_path=str(last) if last.is_file() else None)
    summary = {
        "data": str(data), "seed": seed, "steps": trainer.global_step,
        "train_frames": len(train_rows), "val_frames": len(val_rows),
        "val_median_yaw_error_rad": median_error(net, store, val_rows) if len(val_rows) else None,
        "seconds": time.monotonic() - started,
    }  # fmt: skip
    export = Path(config.export)
    save_grasp_yaw(export, net, summary)
    atomic_write_text(run_dir / "train_summary.json", json.dumps(summary, indent=2))
    log.info("grasp-yaw reader: %s -> %s", summary, export)
    return summary
