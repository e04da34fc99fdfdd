"""Held-out measures of the world model: the predictor's k-step latent error against the
copy-last-latent baseline, and the per-dimension latent spread (collapse shows as std ~ 0).

Errors are mean L1 per latent dimension in the EMA target encoder's space (where the predictor
was trained to land). Both the predictor and the copy baseline start from the target latent of
frame ``t`` (like for like); ``from_online`` is the predictor started from the online encoder's
latent instead, as the tracker runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dualctl.data.dataset import EpisodeStore, WindowDataset
from dualctl.tracker.model import TrackerNet, images_to_float


@dataclass
class PredictionReport:
    """k -> error for k in 1..horizon, and the online latents' per-dimension std."""

    predictor: dict[int, float]
    copy_last: dict[int, float]
    from_online: dict[int, float]
    latent_std: np.ndarray
    windows: int


@torch.no_grad()
def prediction_errors(
    net: TrackerNet, store: EpisodeStore, horizon: int, batch_size: int = 64,
    max_windows: int = 2000, seed: int = 0,
) -> PredictionReport:  # fmt: skip
    """Roll the predictor ``horizon`` frames from each sampled window of ``store``."""
    net.eval()
    config = net.config
    offsets = {
        "frames": list(range(horizon + 1)),
        "action": list(range(horizon)),
        "proprio": [0],
        "tactile": list(range(-config.tactile_history + 1, 1)),
        "wrench": list(range(-config.force_history + 1, 1)),
    }
    dataset = WindowDataset(store, offsets, require_future=horizon)
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(dataset))[:max_windows]
    pred_sum, copy_sum, online_sum = (np.zeros(horizon) for _ in range(3))
    latents = []
    for start in range(0, len(chosen), batch_size):
        batch = {k: torch.from_numpy(v) for k, v in
                 dataset.__getitems__(chosen[start : start + batch_size]).items()}  # fmt: skip
        b = len(batch["frames"])
        images = images_to_float(batch["frames"].flatten(0, 1), config.image_size)
        online = net.encode(images).view(b, horizon + 1, -1)
        target = net.encode(images, target=True).view(b, horizon + 1, -1)
        zeros = torch.zeros(b, 1)
        context = net.context(batch["proprio"][:, 0], batch["wrench"], batch["tactile"],
                              zeros, zeros)  # fmt: skip
        actions = net.normalise("action", batch["action"])
        truth = target[:, 1:]
        rolled = net.rollout(target[:, 0], actions, context)
        pred_sum += (rolled - truth).abs().mean(-1).sum(0).numpy()
        rolled = net.rollout(online[:, 0], actions, context)
        online_sum += (rolled - truth).abs().mean(-1).sum(0).numpy()
        copy_sum += (target[:, :1] - truth).abs().mean(-1).sum(0).numpy()
        latents.append(online[:, 0].numpy())
    n = len(chosen)
    steps = range(1, horizon + 1)
    return PredictionReport(
        predictor={k: float(pred_sum[k - 1] / n) for k in steps},
        copy_last={k: float(copy_sum[k - 1] / n) for k in steps},
        from_online={k: float(online_sum[k - 1] / n) for k in steps},
        latent_std=np.concatenate(latents).std(0),
        windows=n,
    )
