"""``dualctl train planner``: the autoencoder stage, then the latent diffusion stage, then the
export of one checkpoint folder. Each stage resumes from its last Lightning checkpoint, and a
finished autoencoder stage is not repeated.

Run folder layout (``out``)::

    autoencoder/   checkpoints/ (Lightning, for resume), csv/ and tb/ logs, and
                   autoencoder.safetensors once the stage is done
    diffusion/     checkpoints/, csv/ and tb/ logs
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader

from dualctl.config import TrainerConfig
from dualctl.data.episode import atomic_write_bytes
from dualctl.planner.checkpoint import load_weights, read_checkpoint, save_checkpoint
from dualctl.planner.clips import (
    ClipDataset,
    FrameDataset,
    PlannerEpisodes,
    future_indices,
    load_episodes,
    start_steps,
)
from dualctl.planner.clips import frame_stride as clip_stride
from dualctl.planner.config import PlannerConfig, PlannerTrainConfig
from dualctl.planner.lightning import AutoencoderModule, DiffusionModule
from dualctl.planner.model import PlannerModel
from dualctl.planner.text import TextEncoder

log = logging.getLogger(__name__)

AUTOENCODER_WEIGHTS = "autoencoder.safetensors"


@dataclass
class TrainResult:
    checkpoint: Path
    seconds: float
    episodes: int
    clips: int


def _trainer(stage_dir: Path, steps: int, trainer: TrainerConfig, every: int) -> pl.Trainer:
    checkpoints = ModelCheckpoint(
        dirpath=stage_dir / "checkpoints",
        save_last=True,
        every_n_train_steps=every,
        enable_version_counter=False,  # last.ckpt is this run's, so a resume finds it
    )
    return pl.Trainer(
        max_steps=steps,
        accelerator=trainer.accelerator,
        devices=trainer.devices,
        strategy=trainer.strategy,
        precision=trainer.precision,
        log_every_n_steps=trainer.log_every_n_steps,
        logger=[CSVLogger(stage_dir, name="csv"), TensorBoardLogger(stage_dir, name="tb")],
        callbacks=[checkpoints, RichProgressBar()],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_model_summary=False,
    )


def _resume_path(stage_dir: Path) -> str | None:
    last = stage_dir / "checkpoints" / "last.ckpt"
    if last.is_file():
        log.info("resuming %s from %s", stage_dir.name, last)
        return str(last)
    return None


def _fit(fit: pl.Trainer, module: pl.LightningModule, loader: DataLoader, stage_dir: Path):
    """Fit (resuming if a last checkpoint exists), then checkpoint the final state too, so a
    finished stage resumes as finished."""
    fit.fit(module, loader, ckpt_path=_resume_path(stage_dir))
    fit.save_checkpoint(stage_dir / "checkpoints" / "last.ckpt")


def _loader(dataset, batch: int, trainer: TrainerConfig, seed: int) -> DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch,
        shuffle=True,
        drop_last=len(dataset) >= batch,
        num_workers=trainer.num_workers,
        generator=generator,
        persistent_workers=trainer.num_workers > 0,
    )


def train_autoencoder(model, data, config, trainer, out: Path, seed: int) -> None:
    """Fit the autoencoder (or load the finished one from ``out``)."""
    stage_dir = out / "autoencoder"
    done = stage_dir / AUTOENCODER_WEIGHTS
    if done.is_file():
        log.info("autoencoder stage already done: %s", done)
        model.autoencoder.load_state_dict(load_file(done))
        return
    schedule = config.train
    frames = FrameDataset(data.frames, schedule.frame_stride)
    module = AutoencoderModule(model.autoencoder, schedule.lr, schedule.autoencoder_steps)
    fit = _trainer(stage_dir, schedule.autoencoder_steps, trainer, schedule.checkpoint_every)
    _fit(fit, module, _loader(frames, schedule.autoencoder_batch, trainer, seed), stage_dir)
    state = {k: v.contiguous() for k, v in model.autoencoder.state_dict().items()}
    atomic_write_bytes(done, lambda f: f.write(save(state)))


def init_from_checkpoint(model: PlannerModel, folder: Path) -> None:
    """Start from a trained planner's weights and statistics (a CheckpointError names the
    folder when its architecture differs from ``model``'s)."""
    _, tensors, _ = read_checkpoint(folder)
    load_weights(model, tensors, folder)
    log.info("fine-tuning from %s (autoencoder stage skipped, statistics kept)", folder)


@torch.no_grad()
def encode_episodes(model: PlannerModel, frames: list[np.ndarray], batch: int = 256):
    """Raw (un-normalised) latents of every frame, per episode, float32."""
    model.eval()
    latents = []
    for episode in frames:
        chunks = [
            model.autoencoder.encode(
                torch.from_numpy(episode[i : i + batch]).movedim(-1, 1) / 255.0
            )
            for i in range(0, len(episode), batch)
        ]
        latents.append(torch.cat(chunks))
    return latents


def fit_statistics(model: PlannerModel, latents, data: PlannerEpisodes, stride: int) -> None:
    """Latent mean/std, per-horizon latent-change std and proprio mean/std, into the buffers."""
    every = torch.cat(latents)
    model.latent_mean.copy_(every.mean(dim=(0, 2, 3)))
    model.latent_std.copy_(every.std(dim=(0, 2, 3)).clamp(min=1e-3))
    rng = np.random.default_rng(0)
    deltas = []
    for z in latents:
        starts = start_steps(len(z), stride)
        for t in rng.choice(starts, size=min(8, len(starts)), replace=False):
            future = future_indices(int(t), len(z), model.horizon, stride)
            deltas.append(z[torch.from_numpy(future)] - z[t])
    deltas = torch.stack(deltas) / model.latent_std[None, None, :, None, None]
    model.delta_std.copy_(deltas.pow(2).mean(dim=(0, 3, 4)).sqrt().clamp(min=1e-2))
    proprio = torch.from_numpy(np.concatenate(data.proprio))
    model.proprio_mean.copy_(proprio.mean(0))
    model.proprio_std.copy_(proprio.std(0).clamp(min=1e-3))


def build_clips(
    model: PlannerModel, latents, data: PlannerEpisodes, stride: int, schedule: PlannerTrainConfig
):
    """The diffusion stage's dataset and its instruction embedding table."""
    mean, std = model.latent_mean[:, None, None], model.latent_std[:, None, None]
    normalised = [((z - mean) / std).half() for z in latents]
    proprio = [model.normalise_proprio(torch.from_numpy(p)) for p in data.proprio]
    instructions = sorted(set(data.instructions))
    table = torch.from_numpy(TextEncoder().encode_many(instructions))
    text_index = [instructions.index(text) for text in data.instructions]
    early_steps = round(schedule.start_window_s / data.frame_dt)
    clips = ClipDataset(normalised, proprio, text_index, model.delta_std, model.horizon, stride,
                        early_steps, schedule.start_repeat)  # fmt: skip
    return clips, table, instructions


def train_planner(
    dataset: Path,
    out: Path,
    export: Path,
    config: PlannerConfig,
    trainer: TrainerConfig,
    seed: int,
    limit_episodes: int | None = None,
) -> TrainResult:
    """Train both stages on ``dataset`` and write the checkpoint folder ``export``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(trainer.threads)
    try:
        return _train(dataset, Path(out), Path(export), config, trainer, seed, limit_episodes)
    finally:
        torch.set_num_threads(threads)


def _train(dataset, out, export, config, trainer, seed, limit_episodes) -> TrainResult:
    started = time.monotonic()
    pl.seed_everything(seed, workers=True)
    data = load_episodes(Path(dataset), config.camera, limit_episodes)
    stride = clip_stride(config.horizon, config.horizon_s, data.frame_dt)
    model = PlannerModel(config)
    if config.train.init:
        init_from_checkpoint(model, Path(config.train.init))
    else:
        train_autoencoder(model, data, config, trainer, out, seed)

    latents = encode_episodes(model, data.frames)
    model.train()
    if not config.train.init:
        fit_statistics(model, latents, data, stride)
    clips, table, instructions = build_clips(model, latents, data, stride, config.train)
    log.info("%d clips from %d episodes, %d instructions", len(clips), len(data), len(table))
    schedule = config.train
    module = DiffusionModule(
        model.denoiser,
        table,
        schedule.lr,
        schedule.steps,
        schedule.text_dropout,
        schedule.ema_decay,
        config.time_shift,
    )
    stage_dir = out / "diffusion"
    fit = _trainer(stage_dir, schedule.steps, trainer, schedule.checkpoint_every)
    _fit(fit, module, _loader(clips, schedule.batch_size, trainer, seed), stage_dir)
    model.denoiser.load_state_dict(module.ema.state_dict())

    metadata = {
        "image_size": int(data.frames[0].shape[1]),
        "frame_dt": data.frame_dt,
        "frame_stride": stride,
        "dataset": str(dataset),
        "episodes": len(data),
        "instructions": instructions,
        "seed": seed,
        "train_seconds": round(time.monotonic() - started, 1),
    }
    save_checkpoint(export, config, model.state_dict(), metadata)
    log.info("wrote planner checkpoint %s", export)
    return TrainResult(export, time.monotonic() - started, len(data), len(clips))
