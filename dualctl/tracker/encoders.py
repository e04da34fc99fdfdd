"""Image encoders (timm CNN or transformers VJEPA2) and the force/tactile encoder.

Every image encoder maps (B, 3, H, W) float images in [0, 1] to (B, latent_dim) latents; the
tracker never knows which backend it holds.
"""

from __future__ import annotations

import logging
from pathlib import Path

import timm
import torch
from torch import nn

from dualctl.errors import CheckpointError, ConfigError
from dualctl.tracker.config import TrackerConfig
from dualctl.types import TACTILE_SHAPE, WRENCH_DIM

log = logging.getLogger(__name__)

TACTILE_SIZE = int(torch.Size(TACTILE_SHAPE).numel())


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (ReLU: cheap to replay in numpy on the fast path)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def replace_batchnorm(module: nn.Module) -> None:
    """Swap every BatchNorm2d for GroupNorm, in place.

    A batch of training windows holds consecutive frames of few episodes, so batch statistics
    differ from the running ones used at inference (and from the EMA target's); GroupNorm
    normalises each frame on its own and behaves the same in training and at run time.
    """
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            channels = child.num_features
            groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
            setattr(module, name, nn.GroupNorm(groups, channels))
        else:
            replace_batchnorm(child)


def create_backbone(arch: str, in_chans: int, **kwargs) -> nn.Module:
    """A timm model by name, pretrained=False, BatchNorm swapped for GroupNorm."""
    try:
        backbone = timm.create_model(arch, pretrained=False, in_chans=in_chans, **kwargs)
    except RuntimeError as error:  # timm raises RuntimeError for unknown names
        raise CheckpointError(
            f"tracker.arch '{arch}' is not a timm architecture ({error}); "
            "pick one from timm.list_models()"
        ) from error
    replace_batchnorm(backbone)
    return backbone


class TimmImageEncoder(nn.Module):
    """A timm CNN's feature map, flattened (keeps coarse layout), projected to the latent."""

    def __init__(self, arch: str, latent_dim: int, image_size: int, coord_channels: bool):
        super().__init__()
        self.coord_channels = coord_channels
        in_chans = 5 if coord_channels else 3
        self.backbone = create_backbone(arch, in_chans, num_classes=0, global_pool="")
        ramp = torch.linspace(-1.0, 1.0, image_size)
        self.register_buffer("coords", torch.stack(torch.meshgrid(ramp, ramp, indexing="ij")))
        with torch.no_grad():
            features = self.backbone(torch.zeros(1, in_chans, image_size, image_size))
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(features[0].numel(), latent_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images * 2.0 - 1.0
        if self.coord_channels:
            x = torch.cat([x, self.coords.expand(len(x), -1, -1, -1)], 1)
        return self.project(self.backbone(x))


class SpatialSoftmax(nn.Module):
    """(B, C, H, W) feature maps -> (B, 2K) expected (x, y) of K learned keypoints in [-1, 1].

    Each keypoint is a 1x1 convolution's response turned into a probability map over the
    image; its expected coordinates move continuously (sub-cell) and linearly with the thing it
    found, also to positions never seen in training (Levine et al., "End-to-end training of
    deep visuomotor policies", 2016).
    """

    def __init__(self, channels: int, keypoints: int, height: int, width: int):
        super().__init__()
        self.points = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))
        ys, xs = torch.meshgrid(
            torch.linspace(-1.0, 1.0, height), torch.linspace(-1.0, 1.0, width), indexing="ij"
        )
        self.register_buffer("grid", torch.stack([xs.flatten(), ys.flatten()], 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        logits = self.points(features).flatten(2) / self.log_temperature.exp()
        return (torch.softmax(logits, -1) @ self.grid).flatten(1)


class KeypointImageEncoder(nn.Module):
    """Keypoints from a timm CNN's early feature map plus its last map average-pooled.

    Where things are reaches the latent as coordinates (:class:`SpatialSoftmax`), what is there
    as pooled features; no unit is tied to a place in the image, so positions outside the
    training range give coordinates outside it instead of unfamiliar unit patterns.
    """

    def __init__(self, arch: str, latent_dim: int, image_size: int, keypoints: int, stage: int):
        super().__init__()
        self.backbone = create_backbone(arch, 3, features_only=True)
        last = len(self.backbone.feature_info) - 1
        if not 0 <= stage <= last:
            raise ConfigError("tracker.keypoint_stage", stage,
                              f"a feature stage of '{arch}' in 0..{last}")  # fmt: skip
        self.stage = stage
        with torch.no_grad():
            maps = self.backbone(torch.zeros(1, 3, image_size, image_size))
        _, channels, height, width = maps[stage].shape
        self.keypoints = SpatialSoftmax(channels, keypoints, height, width)
        self.project = nn.Linear(2 * keypoints + maps[-1].shape[1], latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.backbone(images * 2.0 - 1.0)
        points = self.keypoints(maps[self.stage])
        return self.project(torch.cat([points, maps[-1].mean((2, 3))], 1))


class Vjepa2ImageEncoder(nn.Module):
    """transformers' VJEPA2Model on a 2-frame clip of the same image, mean-pooled, projected.

    With ``local_path`` a pretrained checkpoint folder is loaded (no download); otherwise a
    tiny random config is built here.
    """

    def __init__(self, config: TrackerConfig, local_path: str = ""):
        super().__init__()
        from transformers import VJEPA2Config, VJEPA2Model

        if local_path:
            if not Path(local_path).is_dir():
                raise CheckpointError(
                    f"tracker.encoder_weights '{local_path}' is not a VJEPA2 checkpoint folder; "
                    "point it at a local folder saved with save_pretrained"
                )
            self.backbone = VJEPA2Model.from_pretrained(local_path, local_files_only=True)
        else:
            heads = max(1, config.vjepa2_hidden_size // 32)
            self.backbone = VJEPA2Model(
                VJEPA2Config(
                    patch_size=config.vjepa2_patch_size,
                    crop_size=config.image_size,
                    frames_per_clip=2,
                    tubelet_size=2,
                    hidden_size=config.vjepa2_hidden_size,
                    num_attention_heads=heads,
                    num_hidden_layers=config.vjepa2_layers,
                    pred_hidden_size=config.vjepa2_hidden_size,
                    pred_num_attention_heads=heads,
                    pred_num_hidden_layers=1,
                )
            )
        self.project = nn.Linear(self.backbone.config.hidden_size, config.latent_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        clip = (images * 2.0 - 1.0).unsqueeze(1).expand(-1, 2, -1, -1, -1)
        out = self.backbone(pixel_values_videos=clip, skip_predictor=True)
        return self.project(out.last_hidden_state.mean(1))


def build_image_encoder(config: TrackerConfig, load_weights: bool = True) -> nn.Module:
    """The image encoder ``config.encoder`` names; ``encoder_weights`` loaded when given."""
    if config.encoder == "vjepa2":
        return Vjepa2ImageEncoder(config, config.encoder_weights if load_weights else "")
    if config.pool == "keypoints":
        encoder = KeypointImageEncoder(
            config.arch, config.latent_dim, config.image_size, config.keypoints,
            config.keypoint_stage,
        )  # fmt: skip
    else:
        encoder = TimmImageEncoder(
            config.arch, config.latent_dim, config.image_size, config.coord_channels
        )
    if load_weights and config.encoder_weights:
        _load_backbone_weights(encoder.backbone, Path(config.encoder_weights))
    return encoder


def _load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(
            f"tracker.encoder_weights '{path}' does not exist; give a local weights file or ''"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    log.info("encoder weights %s: %d missing, %d unexpected", path, len(missing), len(unexpected))


class SensorEncoder(nn.Module):
    """Force/torque history and tactile arrays, each through a small MLP, with missing flags.

    The tactile encoder sees the current taxel map and, for the earlier frames of its history,
    each fingertip's channel totals (how normal and shear force changed: slip shows as shear
    keeping pace with normal force). A missing modality arrives as zeros with its flag set to
    1; modality dropout in training teaches both encoders and everything downstream what that
    means.
    """

    def __init__(self, force_history: int, tactile_history: int, sensor_dim: int):
        super().__init__()
        self.force = mlp([force_history * WRENCH_DIM + 1, 64, sensor_dim])
        past = (tactile_history - 1) * TACTILE_SHAPE[0] * TACTILE_SHAPE[3]
        self.tactile = mlp([TACTILE_SIZE + past + 1, 64, sensor_dim])

    def forward(
        self,
        wrench_history: torch.Tensor,
        tactile: torch.Tensor,
        force_missing: torch.Tensor,
        tactile_missing: torch.Tensor,
    ) -> torch.Tensor:
        """Normalised (B, K, 6) wrench and (B, T, *TACTILE_SHAPE) tactile histories (oldest
        first), (B, 1) flags -> (B, 2 * sensor_dim) features."""
        w = wrench_history.flatten(1) * (1.0 - force_missing)
        totals = tactile[:, :-1].sum((3, 4)).flatten(1)
        t = torch.cat([tactile[:, -1].flatten(1), totals], 1) * (1.0 - tactile_missing)
        force = torch.relu(self.force(torch.cat([w, force_missing], 1)))
        touch = torch.relu(self.tactile(torch.cat([t, tactile_missing], 1)))
        return torch.cat([force, touch], 1)
