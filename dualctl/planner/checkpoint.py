"""The planner checkpoint: a folder with ``planner.safetensors`` (weights, statistics and JSON
metadata) and ``planner.yaml`` (the resolved ``planner`` config section it was trained with).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from dualctl.config import section_from_yaml, to_yaml
from dualctl.data.episode import atomic_write_bytes, atomic_write_text
from dualctl.errors import CheckpointError, ConfigError
from dualctl.planner.config import PlannerConfig

WEIGHTS = "planner.safetensors"
CONFIG = "planner.yaml"
FORMAT = "dualctl-planner-1"


def save_checkpoint(
    directory: Path, config: PlannerConfig, state: dict[str, torch.Tensor], metadata: dict
) -> None:
    """Write weights then config, each atomically (a reader never sees a half-written file)."""
    directory = Path(directory)
    tensors = {key: value.detach().contiguous().cpu() for key, value in state.items()}
    info = {"format": FORMAT, "metadata": json.dumps(metadata)}
    atomic_write_bytes(directory / WEIGHTS, lambda f: f.write(save(tensors, metadata=info)))
    atomic_write_text(directory / CONFIG, to_yaml(config))


def read_checkpoint(directory: Path) -> tuple[PlannerConfig, dict[str, torch.Tensor], dict]:
    """(config, tensors, metadata) of a checkpoint folder; CheckpointError names what is wrong."""
    directory = Path(directory)
    weights, config_path = directory / WEIGHTS, directory / CONFIG
    for path in (weights, config_path):
        if not path.is_file():
            raise CheckpointError(
                f"planner checkpoint {path} does not exist; train one with "
                "`dualctl train planner data=<dataset>` or set planner.checkpoint"
            )
    try:
        config = section_from_yaml(PlannerConfig, config_path, "planner")
    except ConfigError as error:
        raise CheckpointError(
            f"planner checkpoint config {config_path} is invalid: {error}"
        ) from None
    try:
        tensors = load_file(weights)
        with safe_open(weights, "pt") as file:
            info = file.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(f"planner checkpoint {weights} is unreadable ({error})") from None
    if info.get("format") != FORMAT:
        raise CheckpointError(
            f"planner checkpoint {weights} has format {info.get('format')!r}, expected {FORMAT!r}"
        )
    return config, tensors, json.loads(info.get("metadata", "{}"))


def load_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Load ``tensors`` into ``module`` strictly; a key or shape mismatch is a CheckpointError."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(
        f"{key} {tuple(tensors[key].shape)} != {tuple(value.shape)}"
        for key, value in expected.items()
        if key in tensors and tensors[key].shape != value.shape
    )
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"planner checkpoint {path} does not match its config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]}, wrong shape {wrong[:3]}); "
            "retrain it or use the planner.yaml it was saved with"
        )
    module.load_state_dict(tensors)
