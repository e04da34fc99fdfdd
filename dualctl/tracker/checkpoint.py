"""Tracker checkpoints: ``model.safetensors`` + ``config.yaml`` (the resolved tracker section).

The weights carry the SHA-256 of the config text in their safetensors metadata, so a config
and weights from different runs are caught at load time instead of loading garbage. Both
files are written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from safetensors import SafetensorError, safe_open
from safetensors.torch import load, save

from dualctl.config import section_from_yaml, to_yaml
from dualctl.data.episode import atomic_write_bytes, atomic_write_text
from dualctl.errors import CheckpointError, ConfigError
from dualctl.tracker.config import ARCHITECTURE_KEYS, RUN_KEYS, TrackerConfig
from dualctl.tracker.model import TrackerNet

WEIGHTS = "model.safetensors"
CONFIG = "config.yaml"
_FIX = (
    "train one with `dualctl train tracker data=data/sim` or set tracker.checkpoint to a "
    f"folder holding {WEIGHTS} and {CONFIG}"
)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def save_checkpoint(folder: Path, net: TrackerNet, config: TrackerConfig) -> None:
    """Write the network's weights and its resolved config into ``folder``."""
    folder = Path(folder)
    text = to_yaml(config)
    state = {k: v.detach().contiguous().clone() for k, v in net.state_dict().items()}
    blob = save(state, metadata={"config_sha256": _digest(text)})
    atomic_write_text(folder / CONFIG, text)
    atomic_write_bytes(folder / WEIGHTS, lambda f: f.write(blob))


def read_checkpoint_config(folder: Path) -> TrackerConfig:
    """The tracker config a checkpoint was trained with."""
    folder = Path(folder)
    path = folder / CONFIG
    if not folder.is_dir():
        raise CheckpointError(f"tracker checkpoint folder '{folder}' does not exist; {_FIX}")
    if not path.is_file():
        raise CheckpointError(f"tracker checkpoint '{folder}' has no {CONFIG}; {_FIX}")
    try:
        return section_from_yaml(TrackerConfig, path, "tracker")
    except ConfigError as error:
        raise CheckpointError(
            f"tracker checkpoint config '{path}' does not fit this version ({error}); {_FIX}"
        ) from error


def with_run_choices(folder: Path, choices: TrackerConfig) -> TrackerConfig:
    """The config a checkpoint was trained with, with the run-time choices of ``choices``
    (:data:`~dualctl.tracker.config.RUN_KEYS`: rate, controller, dropped inputs, reflexes, MPC)."""
    saved = read_checkpoint_config(folder)
    return dataclasses.replace(saved, **{key: getattr(choices, key) for key in RUN_KEYS})


def with_reader_choices(
    folder: Path, grasp_pose: str = "", hand_pose: str = "", place_pose: str = ""
) -> TrackerConfig:
    """The config a checkpoint was trained with, its grasp-, hand- and place-pose readers
    chosen as the benches' ``--grasp-pose``, ``--hand-pose`` and ``--place-pose`` say: "" (the
    one the checkpoint ships, if any), "off", or a reader folder."""
    saved = read_checkpoint_config(folder)

    def chosen(settings, choice: str):
        off = choice == "off"
        return dataclasses.replace(settings, enabled=not off, checkpoint="" if off else choice)

    return dataclasses.replace(saved, grasp_pose=chosen(saved.grasp_pose, grasp_pose),
                               hand_pose=chosen(saved.hand_pose, hand_pose),
                               place_pose=chosen(saved.place_pose, place_pose))  # fmt: skip


def trained_lookahead_range(saved: TrackerConfig) -> tuple[float, float]:
    """The lookaheads (s) a checkpoint's head was trained for: the range its hindsight
    references were drawn from, or exactly its ``lookahead_s`` when they were not."""
    train = saved.train
    if train.reference_max_s <= 0.0:
        return saved.lookahead_s, saved.lookahead_s
    return train.reference_min_s, train.reference_max_s


def _differs(key: str, saved: TrackerConfig, wanted: TrackerConfig) -> str | None:
    value = getattr(wanted, key)
    if key == "lookahead_s":
        # A head trained on references drawn from a range runs at any lookahead inside it.
        low, high = trained_lookahead_range(saved)
        if low - 1e-9 <= value <= high + 1e-9:
            return None
        return (f"tracker.lookahead_s={value!r} (checkpoint trained for {low!r}..{high!r} s, "
                f"runs at {saved.lookahead_s!r})")  # fmt: skip
    if getattr(saved, key) == value:
        return None
    return f"tracker.{key}={value!r} (checkpoint has {getattr(saved, key)!r})"


def check_compatible(folder: Path, saved: TrackerConfig, wanted: TrackerConfig) -> None:
    """Raise CheckpointError naming every architecture key where ``wanted`` differs (a
    lookahead differs only outside the range the head was trained for)."""
    diffs = [d for k in ARCHITECTURE_KEYS if (d := _differs(k, saved, wanted)) is not None]
    if diffs:
        raise CheckpointError(
            f"tracker checkpoint '{folder}' does not match the config: {'; '.join(diffs)}. "
            "Drop those overrides to use the checkpoint's values, or retrain with "
            "`dualctl train tracker` under the new ones"
        )


def load_checkpoint(folder: Path) -> tuple[TrackerNet, TrackerConfig]:
    """The trained network (in eval mode) and the config it was trained with."""
    folder = Path(folder)
    config = read_checkpoint_config(folder)
    path = folder / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"tracker checkpoint '{folder}' has no {WEIGHTS}; {_FIX}")
    try:
        state = load(path.read_bytes())
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError) as error:
        raise CheckpointError(
            f"'{path}' is not a readable safetensors file ({error}); {_FIX}"
        ) from error
    if metadata.get("config_sha256") != _digest((folder / CONFIG).read_text()):
        raise CheckpointError(
            f"'{path}' was not saved with '{folder / CONFIG}' (config hash differs): the two "
            f"files come from different runs; {_FIX}"
        )
    net = TrackerNet(config, load_encoder_weights=False)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if k in expected and v.shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"'{path}' does not fit the network its config describes (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, shapes {shapes[:3]}); {_FIX}"
        )
    net.load_state_dict(state)
    return net.eval(), config
