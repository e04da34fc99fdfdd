"""Lightning module: JEPA training of the encoder and action-conditioned predictor (teacher
forcing + multi-step rollout in the EMA target's latent space, VICReg variance/covariance
guard), plus the tracking head by behaviour cloning with hindsight references.

A batch comes from :class:`~dualctl.data.dataset.WindowDataset` with :func:`window_offsets`:
frames ``t .. t+H`` then the hindsight reference frame ``t + lookahead``; actions ``t ..
t+H-1``; proprio at ``t``; the wrench and tactile histories up to ``t``. Teacher forcing feeds
the target encoder's latents of frames ``t .. t+H-1`` (as V-JEPA 2-AC feeds its frozen
encoder's), the rollout starts from the online latent of frame ``t``; only two frames per
window go through the online encoder with gradient, which halves the cost of a step.

Windows from episodes that recorded the reference the policy was shown (DAgger rollouts,
:data:`~dualctl.data.dataset.REFERENCE_CAMERA`) condition the head on that frame instead of a
hindsight one, so their labels stay paired with the reference they answered.
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
import torch.nn.functional as F

from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.model import TrackerNet, images_to_float


def head_loss_fn(name: str):
    """The head's behaviour-cloning loss by ``tracker.train.head_loss`` name."""
    return {"mse": F.mse_loss, "l1": F.l1_loss}[name]


def window_offsets(config: TrackerConfig, stored_reference: bool = False) -> dict[str, list[int]]:
    """Step offsets each training window gathers (see the module doc); ``stored_reference``
    adds the recorded reference frame and its flag at ``t``."""
    horizon = config.horizon
    offsets = {
        "frames": [*range(horizon + 1), *reference_offsets(config)],
        "action": list(range(horizon)),
        "proprio": [0],
        "tactile": list(range(-config.tactile_history + 1, 1)),
        "wrench": list(range(-config.force_history + 1, 1)),
    }
    if stored_reference:
        offsets.update(reference_frames=[0], has_reference=[0])
    if config.wrist_camera:
        offsets["wrist_frames"] = [0]
    if config.object_probe:
        offsets["object_yaw"] = [0]
    return offsets


def reference_offsets(config: TrackerConfig) -> list[int]:
    """Frame offsets a hindsight reference is drawn from: the lookahead itself, or a range
    around it (``tracker.train.reference_min_s/max_s``). A range teaches the head to act on
    where it is, not on when the reference says something happens: at run time a lagging
    robot sees references further ahead than the lookahead."""
    c = config.train
    if c.reference_max_s <= 0.0:
        return [config.lookahead_frames]
    low = max(1, round(c.reference_min_s * config.frame_hz))
    return list(range(low, max(low, round(c.reference_max_s * config.frame_hz)) + 1))


def vicreg_terms(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Variance hinge (per-dim std >= 1) and off-diagonal covariance of (N, D) latents."""
    z = z - z.mean(0)
    std = torch.sqrt(z.var(0) + 1e-4)
    variance = F.relu(1.0 - std).mean()
    cov = (z.T @ z) / (len(z) - 1)
    off_diagonal = cov - torch.diag(torch.diag(cov))
    return variance, off_diagonal.pow(2).sum() / z.shape[1]


def random_shift(images: torch.Tensor, pixels: int, windows: int) -> torch.Tensor:
    """Shift each window's frames (B*F, 3, S, S) by one random integer offset (+-pixels)."""
    if pixels == 0:
        return images
    n, _, size, _ = images.shape
    frames = n // windows
    shifts = torch.randint(-pixels, pixels + 1, (windows, 2), device=images.device)
    theta = torch.zeros(windows, 2, 3, device=images.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, :, 2] = shifts.float() * 2.0 / size
    theta = theta.repeat_interleave(frames, 0)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def colour_jitter(images: torch.Tensor, windows: int) -> torch.Tensor:
    """Recolour each window's frames (B*F, 3, S, S) alike: a random order of the colour
    channels and a brightness gain in [0.7, 1.3], so the encoder cannot key on an object's
    or the table's exact colour (the held-out split paints objects in unseen colours)."""
    n = images.shape[0]
    frames = n // windows
    order = torch.argsort(torch.rand(windows, 3, device=images.device), dim=1)
    order = order.repeat_interleave(frames, 0)
    gain = torch.empty(windows, 1, 1, 1, device=images.device).uniform_(0.7, 1.3)
    shuffled = images.gather(1, order[:, :, None, None].expand_as(images))
    return (shuffled * gain.repeat_interleave(frames, 0)).clamp_(0.0, 1.0)


class TrackerLightning(pl.LightningModule):
    """Trains a :class:`TrackerNet` (which holds the normalisation statistics already)."""

    def __init__(self, net: TrackerNet, config: TrackerConfig):
        super().__init__()
        self.net = net
        self.config = config
        self.train_config = config.train

    def _missing_flags(self, batch_size: int, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.train_config.modality_dropout if train else 0.0
        flags = (torch.rand(batch_size, 2, device=self.device) < p).float()
        return flags[:, :1], flags[:, 1:]

    def losses(self, batch: dict[str, torch.Tensor], train: bool) -> dict[str, torch.Tensor]:
        net, h = self.net, self.config.horizon
        frames = batch["frames"]
        b, f = frames.shape[:2]
        if "reference_frames" in batch:
            frames = torch.cat([frames, batch["reference_frames"]], 1)
        images = images_to_float(frames.flatten(0, 1), self.config.image_size)
        if train:
            images = random_shift(images, self.train_config.shift_px, b)
            if self.train_config.colour_jitter:
                images = colour_jitter(images, b)
        images = images.view(b, frames.shape[1], *images.shape[1:])
        # The online encoder (with gradient) sees the frame at t and the reference (hindsight,
        # or the one recorded as shown); the EMA target encodes t .. t+H without gradient:
        # teacher-forcing inputs and targets.
        choice = h + 1 + torch.randint(0, f - h - 1, (b,)) if train else torch.full((b,), f - 1)
        if "has_reference" in batch:
            choice = torch.where(batch["has_reference"][:, 0].cpu(), f, choice)
        pair = torch.stack([images[:, 0], images[torch.arange(b), choice]], 1)
        online = net.encode(pair.flatten(0, 1)).view(b, 2, -1)
        with torch.no_grad():
            target = net.encode(images[:, : h + 1].flatten(0, 1), target=True).view(b, h + 1, -1)
        force_missing, tactile_missing = self._missing_flags(b, train)
        context = net.context(
            batch["proprio"][:, 0], batch["wrench"], batch["tactile"],
            force_missing, tactile_missing,
        )  # fmt: skip
        actions = net.normalise("action", batch["action"])
        teacher = net.predict(target[:, :h], actions, context.unsqueeze(1).expand(-1, h, -1))
        rollout = net.rollout(online[:, 0], actions, context)
        predicted = net.head_action(online[:, 0], online[:, 1], context, self._wrist(batch, train))
        variance, covariance = vicreg_terms(online.flatten(0, 1))
        losses = {
            "teacher": F.l1_loss(teacher, target[:, 1:]),
            "rollout": F.l1_loss(rollout, target[:, 1:]),
            "head": head_loss_fn(self.train_config.head_loss)(predicted, actions[:, 0]),
            "variance": variance,
            "covariance": covariance,
            "latent_std": online.flatten(0, 1).std(0),
        }
        if net.pose is not None:
            losses["pose"] = net.pose_error(online[:, 0], batch["proprio"][:, 0])
        if net.object is not None:
            losses["object"] = net.object_error(online[:, 0], batch["object_yaw"][:, 0])
        return losses

    def _wrist(self, batch: dict[str, torch.Tensor], train: bool) -> torch.Tensor | None:
        """The wrist camera's features at ``t`` (augmented like the scene frames), if any."""
        if "wrist_frames" not in batch:
            return None
        frames = batch["wrist_frames"][:, 0]
        images = images_to_float(frames, self.config.image_size)
        if train:
            images = random_shift(images, self.train_config.shift_px, len(images))
            if self.train_config.colour_jitter:
                images = colour_jitter(images, len(images))
        return self.net.encode_wrist(images)

    def total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        c = self.train_config
        return (
            losses["teacher"]
            + c.rollout_weight * losses["rollout"]
            + c.head_weight * losses["head"]
            + c.var_weight * losses["variance"]
            + c.cov_weight * losses["covariance"]
            + c.pose_weight * losses.get("pose", 0.0)
            + c.object_weight * losses.get("object", 0.0)
        )

    def training_step(self, batch, batch_idx):
        losses = self.losses(batch, train=True)
        loss = self.total(losses)
        self._log("train", losses, loss)
        return loss

    def validation_step(self, batch, batch_idx):
        losses = self.losses(batch, train=False)
        self._log("val", losses, self.total(losses))

    def _log(self, stage: str, losses: dict[str, torch.Tensor], loss: torch.Tensor) -> None:
        on_step = stage == "train"
        values = {f"{stage}/{k}": v for k, v in losses.items() if k != "latent_std"}
        values[f"{stage}/loss"] = loss
        std = losses["latent_std"]
        # The per-dimension spread of the latents: a collapsed dimension shows as std ~ 0.
        values[f"{stage}/latent_std_min"] = std.min()
        values[f"{stage}/latent_std_mean"] = std.mean()
        self.log_dict(values, on_step=on_step, on_epoch=not on_step, prog_bar=False)
        self.log(f"{stage}/loss_total", loss, on_step=on_step, on_epoch=not on_step,
                 prog_bar=True)  # fmt: skip
        if stage == "val" and self.logger is not None and hasattr(self.logger, "experiment"):
            experiment = self.logger.experiment
            if hasattr(experiment, "add_histogram"):
                experiment.add_histogram("val/latent_std_per_dim", std, self.global_step)

    def ema_momentum(self) -> float:
        c = self.train_config
        progress = min(1.0, self.global_step / max(1, self.trainer.max_steps))
        return c.ema_end - (c.ema_end - c.ema_start) * (math.cos(math.pi * progress) + 1) / 2

    def on_train_batch_end(self, outputs, batch, batch_idx):
        momentum = self.ema_momentum()
        self.net.update_target(momentum)
        self.log("train/ema_momentum", momentum, on_step=True)

    def configure_optimizers(self):
        c = self.train_config
        params = [p for p in self.net.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        total = max(1, self.trainer.max_steps)
        warmup = min(100, total // 10)

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / (total - warmup))))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return [optimizer], [{"scheduler": scheduler, "interval": "step"}]
