"""``dualctl train tracker data=<dataset> ...``: one Lightning run, then an atomic export of
``model.safetensors`` + ``config.yaml`` (and a ``train_summary.json``).

Run folder ``<out>/tracker/``: ``logs/`` (CSV + TensorBoard), ``lightning/`` (checkpoints;
``tracker.train.resume=true`` continues from ``last.ckpt``), ``export/`` unless
``tracker.train.export`` names another folder (``configs/tracker/sim.yaml`` ships to
``checkpoints/tracker``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint, RichProgressBar
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from dualctl.config import TrainerConfig
from dualctl.data.dataset import EpisodeStore, WindowDataset, collate_arrays
from dualctl.data.episode import atomic_write_text
from dualctl.errors import CheckpointError, ConfigError, DataError
from dualctl.tracker.checkpoint import check_compatible, load_checkpoint, save_checkpoint
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.head_stage import cache_features, train_head
from dualctl.tracker.lit import TrackerLightning, window_offsets
from dualctl.tracker.model import NORMALISED, STD_FLOORS, TrackerNet

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    export: Path
    seconds: float
    steps: int
    metrics: dict[str, float]


def frame_rate(store: EpisodeStore) -> float:
    """Record rate (Hz) from the episodes' timestamps."""
    steps = np.concatenate([np.diff(store.episode(i).timestamp) for i in range(len(store))])
    steps = steps[steps > 0]
    if not len(steps):
        raise DataError("episodes have no increasing timestamps; cannot tell the frame rate")
    return float(1.0 / np.median(steps))


def split_episodes(count: int, val: int) -> tuple[list[int], list[int]]:
    """Every k-th episode to validation (spreads it over tasks), the rest to training."""
    val = min(val, count // 5)
    val_ids = set(np.linspace(0, count - 1, val).round().astype(int).tolist()) if val else set()
    return [i for i in range(count) if i not in val_ids], sorted(val_ids)


def _resume_path(resume: str, run_dir: Path) -> str | None:
    if not resume:
        return None
    # OmegaConf reads a bare `true` as a bool, which the str field then holds as "True".
    latest = resume.lower() == "true"
    path = run_dir / "lightning" / "last.ckpt" if latest else Path(resume)
    if not path.is_file():
        raise ConfigError("tracker.train.resume", resume,
                          f"'true' with an existing {run_dir}/lightning/last.ckpt, or a .ckpt "
                          "path (or '' to start fresh)")  # fmt: skip
    return str(path)


def _start_from(net: TrackerNet, folder: Path, config: TrackerConfig) -> None:
    """Fine-tune: take weights and normalisation statistics from the checkpoint in ``folder``
    (the inputs keep the scale those weights were trained on). A checkpoint without some of
    the :data:`GROWABLE` parts (pose probe, wrist camera, object probe) can start a network
    that has them: the new parts start fresh and the head's new inputs at zero weight, so the
    head acts as before until training uses them."""
    start, saved = load_checkpoint(folder)
    added = [k for k in GROWABLE if getattr(config, k) and not getattr(saved, k)]
    had = [k for k in GROWABLE if getattr(saved, k)]
    if added and had and GROWABLE.index(added[0]) < GROWABLE.index(had[-1]):
        raise CheckpointError(
            f"tracker.train.init '{folder}' has {had[-1]}, so {added[0]} cannot be added to it "
            f"(the head's new inputs must come after its old ones: {', '.join(GROWABLE)}); "
            "train from a checkpoint without them"
        )
    check_compatible(folder, saved, replace(config, **{k: getattr(saved, k) for k in added}))
    state = start.state_dict()
    if added:
        state = _with_new_inputs(state, net.state_dict())
    net.load_state_dict(state)
    log.info("tracker: fine-tuning from %s%s", folder, f" ({', '.join(added)} added)" * bool(added))


#: Architecture keys a fine-tune may switch on over its ``init`` checkpoint, in the order of
#: the head inputs they add.
GROWABLE = ("pose_probe", "wrist_camera", "object_probe")


def _with_new_inputs(old: dict, new: dict) -> dict:
    """``old`` weights in ``new``'s shapes: new modules fresh, zero weight on the head's new
    inputs (they come after the old ones)."""
    state = {**{k: v for k, v in new.items() if k not in old}, **old}
    grown = torch.zeros_like(new["head.0.weight"])
    grown[:, : old["head.0.weight"].shape[1]] = old["head.0.weight"]
    state["head.0.weight"] = grown
    return state


def _loader(dataset: WindowDataset, batch_size: int, shuffle: bool, workers: int, seed: int):
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
        collate_fn=collate_arrays, generator=torch.Generator().manual_seed(seed),
        persistent_workers=workers > 0,
    )  # fmt: skip


def train_tracker(
    config: TrackerConfig, data: Path, run_dir: Path, seed: int, trainer_config: TrainerConfig
) -> TrainResult:
    """Train on the episodes in ``data``; export to ``config.train.export`` (or run_dir)."""
    started = time.monotonic()
    torch.set_num_threads(trainer_config.threads)
    pl.seed_everything(seed, workers=True)
    tc = config.train
    wrist = [config.wrist_camera] if config.wrist_camera else []
    store = EpisodeStore.load(
        data, camera=config.camera, max_episodes=tc.max_episodes, extra_cameras=wrist
    )
    config.frame_hz = frame_rate(store)
    train_ids, val_ids = split_episodes(len(store), tc.val_episodes)
    train_store = store.subset(train_ids)
    net = TrackerNet(config)
    net.set_stats({k: train_store.stats(k, floor=STD_FLOORS[k]) for k in NORMALISED})
    if tc.init:
        _start_from(net, Path(tc.init), config)
    recorded = tc.recorded_references and "has_reference" in store.arrays
    offsets = window_offsets(config, stored_reference=recorded)
    train_set = WindowDataset(train_store, offsets, require_future=config.horizon)
    log.info("tracker: %d episodes (%d val), %d windows", len(store), len(val_ids),
             len(train_set))  # fmt: skip
    val_loader = None
    if val_ids:
        val_set = WindowDataset(store.subset(val_ids), offsets, require_future=config.horizon)
        val_loader = _loader(val_set, tc.batch_size, False, trainer_config.num_workers, seed)
    metrics: dict[str, float] = {}
    steps = 0
    if tc.max_steps:
        trainer = _fit(net, config, train_set, val_loader, run_dir, seed, trainer_config)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        steps = trainer.global_step
        if trainer.global_rank != 0:
            return TrainResult(Path(), time.monotonic() - started, steps, metrics)
    if tc.head_steps:
        metrics.update(_head_stage(net, config, train_store,
                                   store.subset(val_ids) if val_ids else None, seed))  # fmt: skip
    export = Path(tc.export) if tc.export else run_dir / "export"
    seconds = time.monotonic() - started
    save_checkpoint(export, net.cpu(), config)
    summary = {"seconds": seconds, "steps": steps, "head_steps": tc.head_steps,
               "data": str(data), "episodes": len(store), "seed": seed,
               "metrics": metrics}  # fmt: skip
    atomic_write_text(export / "train_summary.json", json.dumps(summary, indent=2))
    log.info("tracker: %d + %d head steps in %.0f s, exported to %s", steps, tc.head_steps,
             seconds, export)  # fmt: skip
    return TrainResult(export, seconds, steps, metrics)


def _fit(net, config, train_set, val_loader, run_dir, seed, trainer_config) -> pl.Trainer:
    """The joint JEPA + head run with Lightning."""
    tc = config.train
    trainer = pl.Trainer(
        accelerator=trainer_config.accelerator,
        devices=trainer_config.devices,
        strategy=trainer_config.strategy,
        precision=trainer_config.precision,
        max_steps=tc.max_steps,
        max_epochs=-1,
        max_time={"minutes": tc.max_minutes},
        logger=[
            CSVLogger(run_dir / "logs", name="csv"),
            TensorBoardLogger(run_dir / "logs", name="tensorboard"),
        ],
        callbacks=[
            RichProgressBar(),
            ModelCheckpoint(
                dirpath=run_dir / "lightning",
                save_last=True,
                every_n_train_steps=tc.val_every,
                enable_version_counter=False,  # last.ckpt is this run's, so resume finds it
            ),
        ],  # fmt: skip
        log_every_n_steps=trainer_config.log_every_n_steps,
        val_check_interval=tc.val_every if val_loader is not None else None,
        check_val_every_n_epoch=None,
        limit_val_batches=20,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        deterministic=False,
    )
    module = TrackerLightning(net, config)
    trainer.fit(
        module,
        train_dataloaders=_loader(train_set, tc.batch_size, True, trainer_config.num_workers,
                                  seed),
        val_dataloaders=val_loader,
        ckpt_path=_resume_path(tc.resume, run_dir),
    )  # fmt: skip
    return trainer


def _head_stage(net, config, train_store, val_store, seed) -> dict[str, float]:
    """The head alone on the frozen encoder's latents (:mod:`dualctl.tracker.head_stage`)."""
    log.info("tracker: head stage, %d steps on cached latents", config.train.head_steps)
    net.cpu()
    features = cache_features(net, train_store, config)
    val = cache_features(net, val_store, config) if val_store is not None else None
    return train_head(net, features, config, val, seed)
