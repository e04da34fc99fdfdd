"""Lightning training of the eval's two image-to-action regressors, both trained on the same
dataset as the planner and tracker:

- the single-rate baseline: frames (t - stride, t) and proprio(t) -> a chunk of actions, each the
  mean command over one policy period (``stride`` recorded steps);
- the planner-only arm's inverse dynamics: frames (t, t + gap) -> the mean command over the
  ``gap`` steps between them (the UniPi mapping from consecutive planned frames to actions).

Each run is seeded, resumable (Lightning's ``last.ckpt`` in the work folder, with the elapsed
training time, so a resumed run keeps its wall-clock budget), and ends by writing the
safetensors checkpoint.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.nn import functional

from dualctl.data.dataset import EpisodeStore, WindowDataset, collate_arrays
from dualctl.errors import DataError
from dualctl.eval.baseline import ChunkPolicyNet, Normaliser, frames_to_input, save_baseline
from dualctl.eval.config import BaselineConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegressionTask:
    """What one regressor learns.

    Attributes:
        frame_offsets: recorded-step offsets of the input frames, relative to t.
        chunk: actions predicted; action k is the mean of steps ``t + k*stride .. t+(k+1)*stride-1``.
        stride: recorded steps averaged into one predicted action.
        use_proprio: feed proprio(t) (the baseline) or zeros (inverse dynamics sees frames only).
    """

    frame_offsets: tuple[int, ...]
    chunk: int
    stride: int
    use_proprio: bool


def baseline_task(config: BaselineConfig, camera_hz: float) -> RegressionTask:
    stride = steps_per(1.0 / config.rate_hz, camera_hz)
    return RegressionTask((-stride, 0), config.chunk, stride, use_proprio=True)


def inverse_dynamics_task(gap_s: float, camera_hz: float) -> RegressionTask:
    gap = steps_per(gap_s, camera_hz)
    return RegressionTask((0, gap), 1, gap, use_proprio=False)


def steps_per(seconds: float, camera_hz: float) -> int:
    """Recorded steps in ``seconds`` (s) at ``camera_hz`` (Hz), at least 1."""
    return max(1, round(seconds * camera_hz))


def camera_rate(store: EpisodeStore) -> float:
    """Recording rate (Hz) from the episodes' timestamps."""
    steps = np.diff(store.arrays["timestamp"][store.slice(0)])
    if not len(steps) or np.median(steps) <= 0:
        raise DataError(
            "cannot tell the recording rate: the first episode has < 2 increasing timestamps"
        )
    return float(1.0 / np.median(steps))


def normaliser(store: EpisodeStore) -> Normaliser:
    proprio, action = store.stats("proprio"), store.stats("action")
    return Normaliser(proprio.mean, proprio.std, action.mean, action.std)


class RegressorLightning(pl.LightningModule):
    """L1 regression of normalised mean actions (ACT's loss) with random-shift augmentation."""

    def __init__(
        self, net: ChunkPolicyNet, config: BaselineConfig, task: RegressionTask, norm: Normaliser
    ):
        super().__init__()
        self.net, self.config, self.task = net, config, task
        for name, value in norm.tensors().items():
            self.register_buffer(name.replace(".", "_"), value)

    def _targets(self, actions: torch.Tensor) -> torch.Tensor:
        b = actions.shape[0]
        grouped = actions.view(b, self.task.chunk, self.task.stride, -1).mean(2)
        return (grouped - self.norm_action_mean) / self.norm_action_std

    def loss(self, batch: dict[str, torch.Tensor], train: bool) -> torch.Tensor:
        images = frames_to_input(batch["frames"], self.config.image_size)
        if train:
            images = shift(images, max(1, self.config.image_size // 16))
        if self.task.use_proprio:
            proprio = (batch["proprio"][:, 0] - self.norm_proprio_mean) / self.norm_proprio_std
        else:
            proprio = torch.zeros_like(batch["proprio"][:, 0])
        return functional.l1_loss(self.net(images, proprio), self._targets(batch["action"]))

    def training_step(self, batch, batch_idx):
        loss = self.loss(batch, train=True)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", self.loss(batch, train=False), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.net.parameters(), lr=self.config.lr, weight_decay=1e-4)


def shift(images: torch.Tensor, pixels: int) -> torch.Tensor:
    """Random translation by up to ``pixels`` (pad by replication, crop back), per sample."""
    b, _, h, w = images.shape
    padded = functional.pad(images, (pixels,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pixels + 1, (2, b))
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def _loaders(store: EpisodeStore, task: RegressionTask, config: BaselineConfig, seed: int):
    offsets = {
        "frames": list(task.frame_offsets),
        "proprio": [0],
        "action": list(range(task.chunk * task.stride)),
    }
    order = np.random.default_rng(seed).permutation(len(store))
    n_val = round(config.val_fraction * len(store)) if len(store) > 1 else 0
    train_ids, val_ids = sorted(order[n_val:]), sorted(order[:n_val])
    generator = torch.Generator().manual_seed(seed)
    train = torch.utils.data.DataLoader(
        WindowDataset(store.subset(train_ids), offsets), batch_size=config.batch_size, shuffle=True,
        collate_fn=collate_arrays, generator=generator, drop_last=True,
    )  # fmt: skip
    val = None
    if val_ids:
        val = torch.utils.data.DataLoader(
            WindowDataset(store.subset(val_ids), offsets), batch_size=256, collate_fn=collate_arrays
        )
    return train, val


@torch.no_grad()
def validation_loss(module: RegressorLightning, loader) -> float:
    """Mean loss over a loader (no augmentation), with the module in eval mode."""
    module.eval()
    losses = [float(module.loss(batch, train=False)) for batch in loader]
    return sum(losses) / len(losses)


def train_regressor(
    store: EpisodeStore,
    config: BaselineConfig,
    task: RegressionTask,
    work_dir: Path,
    checkpoint: Path,
    meta: dict,
    seed: int = 0,
    max_steps: int = -1,
) -> dict:
    """Train (or resume) one regressor and write its checkpoint; returns the final losses."""
    pl.seed_everything(seed, workers=True)
    work_dir = Path(work_dir)
    norm = normaliser(store)
    module = RegressorLightning(ChunkPolicyNet(config), config, task, norm)
    train, val = _loaders(store, task, config, seed)
    last = work_dir / "last.ckpt"
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=config.max_epochs,
        max_steps=max_steps,
        max_time=datetime.timedelta(minutes=config.max_minutes),
        default_root_dir=work_dir,
        logger=pl.loggers.CSVLogger(work_dir, name="logs"),
        callbacks=[
            pl.callbacks.ModelCheckpoint(
                dirpath=work_dir,
                save_last=True,
                every_n_train_steps=200,
                enable_version_counter=False,
            )
        ],
        log_every_n_steps=20,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    resume = last if last.is_file() else None
    if resume:
        log.info("resuming from %s", resume)
    trainer.fit(module, train, val, ckpt_path=resume)
    trainer.save_checkpoint(last)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    if val is not None:
        metrics["val_loss_final"] = validation_loss(module, val)
    info = {
        **meta,
        "seed": seed,
        "steps": trainer.global_step,
        "task": vars(task),
        "metrics": metrics,
    }
    save_baseline(checkpoint, module.net, config, norm, info)
    log.info("wrote %s after %d steps (%s)", checkpoint, trainer.global_step, metrics)
    return metrics
