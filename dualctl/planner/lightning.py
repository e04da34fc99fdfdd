"""Lightning modules of the two training stages: the frame autoencoder, then latent flow matching
with the autoencoder frozen. Both step a cosine-decayed AdamW for a fixed number of steps."""

from __future__ import annotations

import copy
import math

import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from dualctl.planner.autoencoder import FrameAutoencoder, to_pixels
from dualctl.planner.denoiser import VideoDenoiser
from dualctl.planner.flow import flow_loss

#: Keeps latents near unit scale without fighting reconstruction.
LATENT_PENALTY = 1e-4


def cosine_schedule(optimizer, steps: int, warmup: int = 100):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def configure(parameters, lr: float, steps: int):
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    scheduler = {"scheduler": cosine_schedule(optimizer, steps), "interval": "step"}
    return {"optimizer": optimizer, "lr_scheduler": scheduler}


class AutoencoderModule(pl.LightningModule):
    """Reconstruction (L1 + MSE) of single frames."""

    def __init__(self, autoencoder: FrameAutoencoder, lr: float, steps: int):
        super().__init__()
        self.autoencoder, self.lr, self.steps = autoencoder, lr, steps

    def training_step(self, frames: torch.Tensor, batch_index: int) -> torch.Tensor:
        pixels = to_pixels(frames)
        latents = self.autoencoder.encode(pixels)
        recon = self.autoencoder.decode_unclamped(latents)
        mse = F.mse_loss(recon, pixels)
        loss = F.l1_loss(recon, pixels) + mse + LATENT_PENALTY * latents.pow(2).mean()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/psnr", -10.0 * torch.log10(mse.detach()), prog_bar=True)
        return loss

    def configure_optimizers(self):
        return configure(self.autoencoder.parameters(), self.lr, self.steps)


class DiffusionModule(pl.LightningModule):
    """Flow matching of future-latent changes; keeps an EMA copy of the denoiser, which ships.

    Args:
        text_table: (n_instructions, D) embeddings of the dataset's instructions.
    """

    def __init__(
        self,
        denoiser: VideoDenoiser,
        text_table: torch.Tensor,
        lr: float,
        steps: int,
        text_dropout: float,
        ema_decay: float,
        time_shift: float = 1.0,
    ):
        super().__init__()
        self.denoiser = denoiser
        self.ema = copy.deepcopy(denoiser).requires_grad_(False)
        self.register_buffer("text_table", text_table)
        self.lr, self.steps = lr, steps
        self.text_dropout, self.ema_decay = text_dropout, ema_decay
        self.time_shift = time_shift

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        text = self.text_table[batch["text_index"]]
        dropped = torch.rand(len(text), device=text.device) < self.text_dropout
        text = torch.where(dropped[:, None], self.denoiser.null_text.expand_as(text), text)
        current, proprio = batch["current"], batch["proprio"]

        def velocity(x_t, t, text):
            return self.denoiser(x_t, t, current, text, proprio)

        loss = flow_loss(velocity, batch["delta"], text, self.time_shift)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_index: int) -> None:
        # Warm the EMA up so early weights do not linger in it.
        decay = min(self.ema_decay, (1 + self.global_step) / (10 + self.global_step))
        with torch.no_grad():
            for ema, live in zip(self.ema.parameters(), self.denoiser.parameters()):
                ema.lerp_(live, 1.0 - decay)

    def configure_optimizers(self):
        return configure(self.denoiser.parameters(), self.lr, self.steps)
