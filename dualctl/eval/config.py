"""Schema of the ``ablate`` config section (and of the single-rate baseline it compares with)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dualctl.errors import ConfigError, check_choice, check_range

#: Arms with a fixed meaning; ``delay-<ms>`` arms are added from ``ablate.delays_ms``.
NAMED_ARMS = (
    "full",
    "tracker-only-head",
    "tracker-only-mpc",
    "planner-only",
    "no-force",
    "no-tactile",
    "no-touch",
    "oracle-plan",
    "baseline",
)
DELAY_ARM = re.compile(r"^delay-(\d+)$")
SPLITS = ("train", "heldout")


def delay_arm(delay_ms: int) -> str:
    """The arm name that injects ``delay_ms`` (ms) of planner latency."""
    return f"delay-{int(delay_ms)}"


def arm_sort_key(arm: str) -> tuple[int, int, str]:
    """Named arms in ``NAMED_ARMS`` order, then delay arms by delay, then anything else."""
    if arm in NAMED_ARMS:
        return (0, NAMED_ARMS.index(arm), arm)
    match = DELAY_ARM.match(arm)
    return (1, int(match.group(1)), arm) if match else (2, 0, arm)


@dataclass
class BaselineConfig:
    """The single-rate baseline: image + proprio -> a chunk of actions at a fixed rate.

    Attributes:
        rate_hz: policy rate, Hz (Diffusion Policy runs at 10 Hz).
        chunk: actions predicted per call, each held for 1 / rate_hz s.
        execute: actions of a chunk executed before the next call (receding horizon).
        image_size: square input side, pixels (frames are resized to it).
        channels: widths of the CNN's four stride-2 stages.
        hidden: width of the regression head.
        batch_size: training batch size.
        lr: AdamW learning rate.
        max_epochs: epoch cap; ``max_minutes`` usually stops training first.
        max_minutes: wall-clock training budget, min.
        val_fraction: episodes held out of training to report a validation loss.
        checkpoint: folder the weights (safetensors) and config are written to / read from.
        data: training dataset folder (``dualctl collect`` output).
    """

    rate_hz: float = 10.0
    chunk: int = 8
    execute: int = 4
    image_size: int = 64
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 64])
    hidden: int = 256
    batch_size: int = 64
    lr: float = 1e-3
    max_epochs: int = 200
    max_minutes: float = 10.0
    val_fraction: float = 0.05
    checkpoint: str = "checkpoints/baseline"
    data: str = "data/sim"

    def __post_init__(self):
        check_range("ablate.baseline.rate_hz", self.rate_hz, 1.0, 100.0)
        check_range("ablate.baseline.chunk", self.chunk, 1, 64)
        check_range("ablate.baseline.execute", self.execute, 1, self.chunk)
        check_range("ablate.baseline.image_size", self.image_size, 16, 256)
        if len(self.channels) != 4 or min(self.channels) < 1:
            raise ConfigError("ablate.baseline.channels", self.channels, "4 positive widths")
        check_range("ablate.baseline.hidden", self.hidden, 8)
        check_range("ablate.baseline.batch_size", self.batch_size, 1)
        check_range("ablate.baseline.lr", self.lr, 1e-6, 1.0)
        check_range("ablate.baseline.max_epochs", self.max_epochs, 1)
        check_range("ablate.baseline.max_minutes", self.max_minutes, 0.05)
        check_range("ablate.baseline.val_fraction", self.val_fraction, 0.0, 0.5)


@dataclass
class AblateConfig:
    """Ablation settings.

    Attributes:
        arms: arms to run (``NAMED_ARMS`` or ``delay-<ms>``).
        delays_ms: planner latencies (ms) injected by the ``delay-<ms>`` arms added to ``arms``.
        tasks: sim tasks to run.
        splits: variation splits ("train", "heldout").
        episodes_per_cell: episodes per (task, arm, split) cell; 50 keeps a Wilson interval
            about +-0.14 wide at a 50 % success rate.
        seed: seed of a cell's first episode; episode i uses ``seed + i`` in every arm. Far from
            the collection seeds so evaluation scenes are not training scenes.
        episode_s: a cap on episode length, virtual s; each task's own time limit (in the
            sim) ends episodes first.
        workers: parallel worker processes (one episode each at a time).
        videos_per_arm: rollout videos per (task, arm), of the first split's lowest seeds.
        out: output folder (CSV, table, plots, videos).
        tracker_checkpoint: folder of the tracker checkpoint.
        tracker_ensemble: more tracker checkpoint folders acting with ``tracker_checkpoint``
            as one in every tracker arm (:mod:`dualctl.tracker.ensemble`); empty: it alone.
        planner_checkpoint: folder of the planner checkpoint.
        inverse_dynamics: folder of the planner-only arm's inverse-dynamics model.
        inverse_dynamics_minutes: its wall-clock training budget, min.
        baseline: the single-rate baseline's model and training settings.
    """

    arms: list[str] = field(default_factory=lambda: list(NAMED_ARMS))
    delays_ms: list[int] = field(default_factory=lambda: [0, 250, 500, 1000, 2000])
    tasks: list[str] = field(default_factory=lambda: ["Lift", "Place", "Fragile", "Slippery"])
    splits: list[str] = field(default_factory=lambda: list(SPLITS))
    episodes_per_cell: int = 50
    seed: int = 100_000
    episode_s: float = 16.0
    workers: int = 2
    videos_per_arm: int = 1
    out: str = "out/ablate"
    tracker_checkpoint: str = "checkpoints/tracker"
    tracker_ensemble: list[str] = field(default_factory=list)
    planner_checkpoint: str = "checkpoints/planner"
    inverse_dynamics: str = "checkpoints/baseline/inverse_dynamics"
    inverse_dynamics_minutes: float = 4.0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)

    def __post_init__(self):
        for index, arm in enumerate(self.arms):
            if arm not in NAMED_ARMS and not DELAY_ARM.match(arm):
                raise ConfigError(
                    f"ablate.arms[{index}]",
                    arm,
                    "one of " + ", ".join(NAMED_ARMS) + " or delay-<ms>",
                )
        for index, delay in enumerate(self.delays_ms):
            check_range(f"ablate.delays_ms[{index}]", delay, 0, 60_000)
        if not self.tasks:
            raise ConfigError("ablate.tasks", self.tasks, "at least one task")
        for index, split in enumerate(self.splits):
            check_choice(f"ablate.splits[{index}]", split, SPLITS)
        check_range("ablate.episodes_per_cell", self.episodes_per_cell, 1)
        check_range("ablate.seed", self.seed, 0)
        check_range("ablate.episode_s", self.episode_s, 0.5, 600.0)
        check_range("ablate.workers", self.workers, 1, 64)
        check_range("ablate.videos_per_arm", self.videos_per_arm, 0)
        check_range("ablate.inverse_dynamics_minutes", self.inverse_dynamics_minutes, 0.05)

    def all_arms(self) -> list[str]:
        """``arms`` followed by one ``delay-<ms>`` arm per entry of ``delays_ms``, no repeats."""
        names = list(self.arms) + [delay_arm(d) for d in self.delays_ms]
        return list(dict.fromkeys(names))
