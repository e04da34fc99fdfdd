"""What the frame readers' trainers (``dualctl train grasp-pose`` / ``hand-pose``) share: a
loader over labelled frames and a seeded, resumable Lightning fit with a progress bar and CSV
logs (``last.ckpt`` in the run folder's ``lightning/``)."""

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

from dualctl.config import TrainerConfig
from dualctl.data.episode import atomic_write_text
from dualctl.tracker.frame_reader import FrameReader, save_reader

log = logging.getLogger(__name__)

#: Steps between validations and between checkpoints.
EVERY_STEPS = 250


def frame_loader(frames: np.ndarray, labels: np.ndarray, batch: int, shuffle: bool, seed: int):
    """Batches of (uint8 frames, float32 labels); shuffled with ``seed`` and full-sized when
    ``shuffle``."""
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(frames),
                                       torch.from_numpy(labels.astype(np.float32))),
        batch_size=batch, shuffle=shuffle, generator=torch.Generator().manual_seed(seed),
        drop_last=shuffle,
    )  # fmt: skip


def fit_reader(
    module: pl.LightningModule,
    train: torch.utils.data.DataLoader,
    val: torch.utils.data.DataLoader | None,
    steps: int,
    max_minutes: float,
    run_dir: Path,
    trainer_config: TrainerConfig,
) -> int:
    """Fit ``module`` for ``steps`` (or ``max_minutes``), resuming from ``run_dir``'s last
    checkpoint if there is one; returns the steps done in all."""
    trainer = pl.Trainer(
        accelerator=trainer_config.accelerator, devices=trainer_config.devices,
        strategy=trainer_config.strategy, max_steps=steps,
        max_time=datetime.timedelta(minutes=max_minutes), default_root_dir=run_dir,
        logger=CSVLogger(run_dir, name="logs"),
        callbacks=[ModelCheckpoint(dirpath=run_dir / "lightning", save_last=True,
                                   every_n_train_steps=EVERY_STEPS, enable_version_counter=False),
                   RichProgressBar()],
        log_every_n_steps=trainer_config.log_every_n_steps, val_check_interval=EVERY_STEPS,
        check_val_every_n_epoch=None, num_sanity_val_steps=0, enable_model_summary=False,
    )  # fmt: skip
    last = run_dir / "lightning" / "last.ckpt"
    trainer.fit(module, train, val, ckpt_path=str(last) if last.is_file() else None)
    return trainer.global_step


def export_reader(
    net: FrameReader, stem: str, export: str, run_dir: Path, started: float, **facts
) -> dict:
    """Write the trained reader to ``export`` (as ``stem``.*) and its training summary (the
    ``facts``, and the seconds since ``started``, a ``time.monotonic()``) into both its info
    and ``run_dir/train_summary.json``; returns the summary."""
    summary = {**facts, "seconds": time.monotonic() - started}
    save_reader(Path(export), stem, net, summary)
    atomic_write_text(run_dir / "train_summary.json", json.dumps(summary, indent=2))
    log.info("%s reader: %s -> %s", stem, summary, export)
    return summary
