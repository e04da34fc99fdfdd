"""Schema of the ``planner`` config section."""

from __future__ import annotations

from dataclasses import dataclass, field

from dualctl.errors import check_choice, check_range


@dataclass
class AutoencoderConfig:
    """The frame autoencoder: (H, W, 3) pixels <-> (latent_channels, H/4, W/4) latents.

    Attributes:
        latent_channels: channels of the latent grid; 4 at 16x16 keeps 12x fewer numbers than
            the 64x64 image, enough for the sim's flat-shaded scenes.
        width: channels of the full-resolution stage; the 1/4 stage has twice as many.
    """

    latent_channels: int = 4
    width: int = 32

    def __post_init__(self):
        check_range("planner.autoencoder.latent_channels", self.latent_channels, 1, 32)
        check_range("planner.autoencoder.width", self.width, 8, 256)


@dataclass
class DenoiserConfig:
    """The space-time factorised latent video denoiser.

    Attributes:
        width_high: channels at the latent resolution (16x16).
        width_low: channels at half the latent resolution, where most blocks run.
        blocks: residual + temporal-attention blocks at the low resolution.
        heads: attention heads (temporal and spatial).
        embed_dim: size of the conditioning embedding (time, instruction, proprio, frame index).
    """

    width_high: int = 32
    width_low: int = 96
    blocks: int = 3
    heads: int = 4
    embed_dim: int = 128

    def __post_init__(self):
        check_range("planner.denoiser.width_high", self.width_high, 8, 512)
        check_range("planner.denoiser.width_low", self.width_low, 8, 1024)
        check_range("planner.denoiser.blocks", self.blocks, 1, 16)
        check_range("planner.denoiser.heads", self.heads, 1, 16)
        check_range("planner.denoiser.embed_dim", self.embed_dim, 16, 1024)
        for key, width in (("width_high", self.width_high), ("width_low", self.width_low)):
            if width % 8 or width % self.heads:
                check_choice(f"planner.denoiser.{key}", width, ["a multiple of 8 and of heads"])


@dataclass
class PlannerTrainConfig:
    """Training schedule of ``dualctl train planner`` (both stages).

    Attributes:
        autoencoder_steps: optimiser steps of the autoencoder stage.
        autoencoder_batch: frames per autoencoder batch.
        steps: optimiser steps of the diffusion stage.
        batch_size: clips per diffusion batch.
        lr: AdamW learning rate of both stages.
        text_dropout: probability of replacing the instruction by the null embedding, which
            teaches the unconditional model classifier-free guidance needs.
        ema_decay: exponential moving average of the denoiser's weights; the EMA weights ship.
        frame_stride: use every n-th recorded frame for the autoencoder (neighbours are alike).
        checkpoint_every: Lightning checkpoint (for resume) every this many steps.
        init: a planner checkpoint folder to fine-tune (empty: train from scratch). Its
            autoencoder, denoiser and latent statistics are loaded; the autoencoder stage is
            skipped and the statistics are kept, so the denoiser sees the scale it learned.
        start_repeat: clips that start in an episode's first ``start_window_s`` (s) appear
            this many times per epoch (1: as often as any other). Every run of the controller
            is planned from that first view (the arm still out of sight above the table), and
            the shipped planner imagines a still scene from a third of the train split's start
            frames (``bench/planner_starts.py``).
        start_window_s: see ``start_repeat``.
    """

    autoencoder_steps: int = 800
    autoencoder_batch: int = 32
    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    text_dropout: float = 0.15
    ema_decay: float = 0.998
    frame_stride: int = 2
    checkpoint_every: int = 250
    init: str = ""
    start_repeat: int = 1
    start_window_s: float = 0.5

    def __post_init__(self):
        check_range("planner.train.start_repeat", self.start_repeat, 1, 100)
        check_range("planner.train.start_window_s", self.start_window_s, 0.0, 10.0)
        check_range("planner.train.autoencoder_steps", self.autoencoder_steps, 1)
        check_range("planner.train.autoencoder_batch", self.autoencoder_batch, 1)
        check_range("planner.train.steps", self.steps, 1)
        check_range("planner.train.batch_size", self.batch_size, 1)
        check_range("planner.train.lr", self.lr, 1e-6, 1.0)
        check_range("planner.train.text_dropout", self.text_dropout, 0.0, 1.0)
        check_range("planner.train.ema_decay", self.ema_decay, 0.0, 0.99999)
        check_range("planner.train.frame_stride", self.frame_stride, 1)
        check_range("planner.train.checkpoint_every", self.checkpoint_every, 1)


@dataclass
class PlannerConfig:
    """System 2 settings.

    Attributes:
        horizon: number of future frames in a plan.
        horizon_s: time the plan spans, s.
        camera: the camera whose frames the planner sees and imagines.
        checkpoint: folder of the planner checkpoint (safetensors + planner.yaml).
        steps: ODE solver steps per plan; more is slower and a little sharper.
        sampler: "euler" (one model call per step) or "heun" (two).
        guidance: classifier-free guidance scale on the instruction; 1 turns it off.
        seed: seed of the initial noise of every plan, so a plan is a function of its inputs.
        noise_scale: temperature of the initial noise; below 1 trades diversity for plans
            nearer the likeliest future. 0 (the ODE from the noise's mean) scores best against
            the real future on held-out episodes (bench/planner_quality.py), which is what a
            reference to track needs; raise it to see other futures.
        residual_decode: paint the decoded change onto the real current frame instead of
            showing the decoded frames, so what does not move keeps its true pixels.
        change_threshold: with residual_decode, per-pixel changes below this (in [0, 1]
            intensity) count as sampling noise and fade out; 0 keeps every change.
        composite: with residual_decode, "add" the decoded change to the real frame; "mask":
            replace the pixels that change by the decoded future (no ghost of what moved away);
            "blend": mix in the decoded future in proportion to how much a pixel changes, up
            to ``blend_scale`` (no ghost, and an unsure faint change stays mostly real).
        blend_scale: with composite "blend", the per-pixel change (largest channel, in [0, 1]
            intensity) from which a pixel shows the decoded future alone.
        time_shift: moves the flow times of training and of the sampler's steps towards the
            noise end (SD3's shift, ``dualctl.planner.flow``); 1 leaves them uniform-logit.
            The checkpoint keeps the value it was trained with.
    """

    horizon: int = 8
    horizon_s: float = 2.0
    camera: str = "scene"
    checkpoint: str = "checkpoints/planner"
    steps: int = 6
    sampler: str = "euler"
    guidance: float = 2.0
    seed: int = 0
    noise_scale: float = 0.0
    residual_decode: bool = True
    change_threshold: float = 0.0
    composite: str = "add"
    blend_scale: float = 0.3
    time_shift: float = 1.0
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    denoiser: DenoiserConfig = field(default_factory=DenoiserConfig)
    train: PlannerTrainConfig = field(default_factory=PlannerTrainConfig)

    def __post_init__(self):
        check_range("planner.horizon", self.horizon, 1, 64)
        check_range("planner.horizon_s", self.horizon_s, 0.1, 30.0)
        check_range("planner.steps", self.steps, 1, 200)
        check_choice("planner.sampler", self.sampler, ("euler", "heun"))
        check_range("planner.guidance", self.guidance, 0.0, 20.0)
        check_range("planner.seed", self.seed, 0)
        check_range("planner.noise_scale", self.noise_scale, 0.0, 2.0)
        check_range("planner.change_threshold", self.change_threshold, 0.0, 1.0)
        check_choice("planner.composite", self.composite, ("add", "mask", "blend"))
        check_range("planner.blend_scale", self.blend_scale, 0.01, 1.0)
        check_range("planner.time_shift", self.time_shift, 0.1, 20.0)
