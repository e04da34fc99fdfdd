"""Second training stage: the tracking head alone, on latents of the frozen encoder.

Why: a step of the joint JEPA run encodes seven frames per window, so within the time budget
the head sees each window only a few times and stays under-fitted. Once the encoder is
trained a frame's latent is fixed: encoding every frame once and then training the head on
the cached latents costs a few milliseconds per step, so it can take tens of thousands of
steps in a minute or two. Each frame is encoded ``tracker.train.head_copies`` times, once as
it is and the others randomly shifted like the joint run's augmentation (a head fitted to one
exact latent per frame overfits it). Only the head's weights change; the encoders, the sensor
encoder and the predictor stay as the first stage left them (latent MPC and the fast path
keep their inputs).

References are drawn as in the first stage: the recorded one where an episode has it (DAgger
rollouts), else the hindsight latent ``reference_min_s .. reference_max_s`` ahead in the same
episode; modality dropout masks force and tactile as in the first stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from rich.progress import Progress

from dualctl.data.dataset import EpisodeStore, WindowDataset, collate_arrays
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.lit import head_loss_fn, random_shift, reference_offsets, window_offsets
from dualctl.tracker.model import TrackerNet, images_to_float

#: Keys cached per step, besides the latents.
_INPUTS = ("proprio", "wrench", "tactile", "action")


@dataclass
class HeadFeatures:
    """Per-step inputs of the head for every step of a store (row ``i`` = store row ``i``).

    ``latent`` (C, N, D) is the online encoder's latent of the step's frame, unshifted in copy
    0 and randomly shifted (``tracker.train.shift_px``) in the others, as the joint run
    augments; ``reference`` (C, N, D) the recorded reference's latents where
    ``has_reference``; ``proprio`` (N, 10), ``wrench`` (N, K, 6), ``tactile`` (N, T, ...) raw
    inputs; ``action`` (N, 7) normalised labels;
    ``start``/``length`` each row's episode start row and length.
    """

    latent: torch.Tensor
    reference: torch.Tensor
    has_reference: torch.Tensor
    proprio: torch.Tensor
    wrench: torch.Tensor
    tactile: torch.Tensor
    action: torch.Tensor
    start: torch.Tensor
    length: torch.Tensor

    def __len__(self) -> int:
        return self.latent.shape[1]


@torch.no_grad()
def cache_features(
    net: TrackerNet, store: EpisodeStore, config: TrackerConfig, batch_size: int = 256
) -> HeadFeatures:
    """Encode every frame of ``store`` (``tracker.train.head_copies`` times, see
    :class:`HeadFeatures`) and gather the head's inputs."""
    recorded = config.train.recorded_references and "has_reference" in store.arrays
    offsets = {k: v for k, v in window_offsets(config, recorded).items() if k != "frames"}
    offsets.update(frames=[0], action=[0], proprio=[0])
    windows = WindowDataset(store, offsets)
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in (*_INPUTS, "latent", "reference")}
    parts["has_reference"] = []
    was_training = net.training
    net.eval()
    for first in range(0, len(windows), batch_size):
        rows = range(first, min(first + batch_size, len(windows)))
        batch = collate_arrays(windows.__getitems__(list(rows)))
        parts["latent"].append(_encode_copies(net, batch["frames"][:, 0], config))
        if recorded:
            parts["reference"].append(_encode_copies(net, batch["reference_frames"][:, 0], config))
            parts["has_reference"].append(batch["has_reference"][:, 0].bool())
        else:
            parts["reference"].append(torch.zeros_like(parts["latent"][-1]))
            parts["has_reference"].append(torch.zeros(len(rows), dtype=torch.bool))
        for key in ("wrench", "tactile"):
            parts[key].append(batch[key])
        parts["proprio"].append(batch["proprio"][:, 0])
        parts["action"].append(net.normalise("action", batch["action"][:, 0]))
    net.train(was_training)
    episode = torch.from_numpy(windows.episodes)
    latents = {k: torch.cat(parts.pop(k), 1) for k in ("latent", "reference")}
    return HeadFeatures(
        **latents,
        **{k: torch.cat(v) for k, v in parts.items()},
        start=torch.from_numpy(store.starts)[episode],
        length=torch.from_numpy(store.lengths)[episode],
    )


def _encode_copies(net: TrackerNet, frames: torch.Tensor, config: TrackerConfig) -> torch.Tensor:
    """(B, H, W, 3) frames -> (copies, B, D) latents: as they are, then randomly shifted."""
    images = images_to_float(frames, config.image_size)
    copies = [net.encode(images)]
    for _ in range(config.train.head_copies - 1):
        shifted = random_shift(images, config.train.shift_px, len(images))
        copies.append(net.encode(shifted))
    return torch.stack(copies)


def head_batch(
    net: TrackerNet,
    features: HeadFeatures,
    rows: torch.Tensor,
    ahead: torch.Tensor,
    dropout: float,
    augment: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(latent, reference, context) of ``rows``, the hindsight reference ``ahead`` steps on
    (clamped to the episode) unless the row recorded one; each latent from a random copy if
    ``augment`` (else the unshifted one); force and tactile each dropped with probability
    ``dropout``."""
    f = features
    step = rows - f.start[rows]
    hindsight = f.start[rows] + torch.minimum(step + ahead, f.length[rows] - 1)
    recorded = f.has_reference[rows, None]
    copies = f.latent.shape[0]
    now, later = (torch.randint(copies, (len(rows),)) if augment else torch.zeros_like(rows)
                  for _ in range(2))  # fmt: skip
    reference = torch.where(recorded, f.reference[later, rows], f.latent[later, hindsight])
    missing = (torch.rand(len(rows), 2) < dropout).float()
    with torch.no_grad():
        context = net.context(
            f.proprio[rows], f.wrench[rows], f.tactile[rows], missing[:, :1], missing[:, 1:]
        )
    return f.latent[now, rows], reference, context


def head_loss(
    net: TrackerNet, features: HeadFeatures, rows: torch.Tensor, ahead: torch.Tensor,
    dropout: float = 0.0, augment: bool = False, loss: str = "mse",
) -> torch.Tensor:  # fmt: skip
    """The ``loss`` ("mse" or "l1") of the head's normalised action on ``rows`` against their
    labels."""
    latent, reference, context = head_batch(net, features, rows, ahead, dropout, augment)
    return head_loss_fn(loss)(net.head_action(latent, reference, context), features.action[rows])


def train_head(
    net: TrackerNet,
    features: HeadFeatures,
    config: TrackerConfig,
    val: HeadFeatures | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit ``net.head`` on ``features`` for ``config.train.head_steps`` steps; returns the
    head loss on the last training batch and, with ``val``, on the validation steps (all of
    them, hindsight references at the lookahead, nothing dropped), before and after."""
    tc = config.train
    generator = torch.Generator().manual_seed(seed)
    choices = torch.tensor(reference_offsets(config))
    metrics = {}
    if val is not None:
        metrics["head_stage/val_head_before"] = _val_loss(net, val, config)
    optimizer = torch.optim.AdamW(net.head.parameters(), lr=tc.head_lr,
                                  weight_decay=tc.weight_decay)  # fmt: skip
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, tc.head_lr,
                                                   total_steps=tc.head_steps)  # fmt: skip
    with Progress(transient=True) as progress:
        bar = progress.add_task("head on frozen latents", total=tc.head_steps)
        for _ in range(tc.head_steps):
            rows = torch.randint(len(features), (tc.head_batch_size,), generator=generator)
            ahead = choices[torch.randint(len(choices), (len(rows),), generator=generator)]
            loss = head_loss(
                net, features, rows, ahead, tc.modality_dropout, augment=True, loss=tc.head_loss
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            progress.advance(bar)
    metrics["head_stage/train_head"] = float(loss.detach())
    if val is not None:
        metrics["head_stage/val_head"] = _val_loss(net, val, config)
    return metrics


@torch.no_grad()
def _val_loss(net: TrackerNet, val: HeadFeatures, config: TrackerConfig) -> float:
    rows = torch.arange(len(val))
    ahead = torch.full((len(val),), config.lookahead_frames)
    return float(head_loss(net, val, rows, ahead, loss=config.train.head_loss))
