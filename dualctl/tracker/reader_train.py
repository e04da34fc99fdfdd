"""What the frame readers' trainers (``dualctl train grasp-pose`` / ``hand-pose`` /
``place-pose``) share: :func:`train_reader`, which loads the dataset, splits its episodes,
fits a reader with a seeded, resumable Lightning run (progress bar, CSV logs, ``last.ckpt``
in the run folder's ``lightning/``) and exports it; each trainer gives it a
:class:`ReaderRecipe`."""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger

from dualctl.config import TrainerConfig
from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import atomic_write_text
from dualctl.errors import DataError
from dualctl.tracker.config import ReaderTrainingConfig
from dualctl.tracker.frame_reader import FrameReader, ReaderConfig, save_reader
from dualctl.tracker.model import images_to_float
from dualctl.tracker.train import split_episodes

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


@torch.no_grad()
def predictions(
    net: FrameReader, store: EpisodeStore, rows: np.ndarray, labels: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """``net``'s readings of the given frames and their ``labels``, as tensors, in eval mode."""
    net.eval()
    loader = frame_loader(store.arrays["frames"][rows], labels, 256, False, 0)
    pairs = [(net(images_to_float(f, net.config.image_size)), t) for f, t in loader]
    return torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])


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


@dataclass(frozen=True)
class ReaderRecipe:
    """What one reader's trainer gives :func:`train_reader`.

    Attributes:
        stem: the reader's file stem.
        net: its class.
        lightning: (net, lr) -> the Lightning module that fits it.
        rows: (store, episode indices) -> indices into ``store.arrays`` of those episodes'
            frames to learn from.
        labels: (store, rows) -> those frames' labels, (N, L).
        validate: (net, store, validation rows) -> the figures the summary reports.
        unfit: (store, training rows) -> why the dataset cannot teach the reader (completing
            "dataset <path> ..."), or "" when it can.
    """

    stem: str
    net: type[FrameReader]
    lightning: Callable[[FrameReader, float], pl.LightningModule]
    rows: Callable[[EpisodeStore, list[int]], np.ndarray]
    labels: Callable[[EpisodeStore, np.ndarray], np.ndarray]
    validate: Callable[[FrameReader, EpisodeStore, np.ndarray], dict]
    unfit: Callable[[EpisodeStore, np.ndarray], str]


def train_reader(
    recipe: ReaderRecipe,
    config: ReaderTrainingConfig,
    data: Path,
    run_dir: Path,
    seed: int,
    trainer_config: TrainerConfig,
) -> dict:
    """Fit ``recipe``'s reader on ``data`` (``config.val_episodes`` held back); write it to
    ``config.export``; returns the training summary."""
    started = time.monotonic()
    torch.set_num_threads(trainer_config.threads)
    pl.seed_everything(seed, workers=True)
    store = EpisodeStore.load(data, camera=config.camera)
    train_ids, val_ids = split_episodes(len(store), config.val_episodes)
    train_rows, val_rows = recipe.rows(store, train_ids), recipe.rows(store, val_ids)
    problem = recipe.unfit(store, train_rows)
    if problem:
        raise DataError(f"dataset {data} {problem}")
    frames = store.arrays["frames"]
    net = recipe.net(ReaderConfig(camera=config.camera, image_size=frames.shape[1]))

    def loader(rows: np.ndarray, batch: int, shuffle: bool):
        return frame_loader(frames[rows], recipe.labels(store, rows), batch, shuffle, seed)

    val = loader(val_rows, 256, False) if len(val_rows) else None
    train = loader(train_rows, config.batch_size, True)
    steps = fit_reader(recipe.lightning(net, config.lr), train, val, config.steps,
                       config.max_minutes, run_dir, trainer_config)  # fmt: skip
    found = recipe.validate(net, store, val_rows) if len(val_rows) else {}
    return export_reader(net, recipe.stem, config.export, run_dir, started, data=str(data),
                         seed=seed, steps=steps, train_frames=len(train_rows),
                         val_frames=len(val_rows), **found)  # fmt: skip
