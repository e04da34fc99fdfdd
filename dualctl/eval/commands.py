"""``dualctl ablate`` (run every arm on the same seeds, resumably, then write the report) and
``dualctl train baseline`` / ``dualctl train inverse-dynamics`` (the two regressors the
ablation's baseline and planner-only arms need)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import logging
import os
from pathlib import Path

import torch

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import Config, load_config, to_yaml
from dualctl.data.episode import atomic_write_text
from dualctl.errors import ConfigError
from dualctl.eval.config import BaselineConfig
from dualctl.eval.results import ResultsStore, read_results
from dualctl.eval.runner import make_jobs, run_jobs
from dualctl.eval.summary import write_report

log = logging.getLogger(__name__)

# Offscreen rendering for the episodes' sim (and the workers spawned from this process); it must
# be chosen before mujoco is first imported, which the CLI's other command modules do.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

#: Keys of ``ablate`` that only choose which episodes run (or how fast), so a run may be
#: resumed into the same folder with other values. Everything else must match the first run.
_EPISODE_SELECTION = {
    "arms": [],
    "delays_ms": [],
    "tasks": ["-"],
    "splits": [],
    "episodes_per_cell": 1,
    "workers": 1,
    "videos_per_arm": 0,
}
EPISODE_FACTORY = "dualctl.eval.episode:make_episode_fn"


def register(registry: CommandRegistry) -> None:
    parser = registry.add(
        "ablate", "run the ablation arms on the same seeds and report", run_ablate
    )
    parser.add_argument(
        "--report-only", action="store_true", help="only rewrite the report from the CSV"
    )
    add_overrides(parser)
    add_overrides(
        registry.add_train(
            "baseline", "train the single-rate image-to-action-chunk baseline", run_train_baseline
        )
    )
    add_overrides(
        registry.add_train(
            "inverse-dynamics",
            "train the planner-only arm's frames-to-action model",
            run_train_inverse,
        )
    )


def _outcome_config(config: Config) -> str:
    """The resolved config without the keys that only select episodes, and the digest of every
    checkpoint's weights (a retrained model makes a new run, not a continuation)."""
    ablate = dataclasses.replace(config.ablate, **_EPISODE_SELECTION)
    a = config.ablate
    folders = (
        a.tracker_checkpoint,
        a.planner_checkpoint,
        a.baseline.checkpoint,
        a.inverse_dynamics,
    )
    digests = [
        f"# {path}: {_digest(path)}"
        for folder in folders
        for path in sorted(Path(folder).glob("*.safetensors"))
    ]
    return to_yaml(dataclasses.replace(config, ablate=ablate)) + "\n".join(digests) + "\n"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _check_same_run(out: Path, config: Config) -> None:
    """Refuse to mix episodes run under different settings into one results file."""
    saved = out / "outcome_config.yaml"
    current = _outcome_config(config)
    if saved.is_file() and saved.read_text() != current:
        raise ConfigError(
            "ablate.out", str(out),
            "a fresh folder: it holds results run under other settings (see "
            f"{saved}); choose another ablate.out or move the old one away",
        )  # fmt: skip
    atomic_write_text(saved, current)
    atomic_write_text(out / "config.yaml", to_yaml(config))


def run_ablate(args: argparse.Namespace) -> int:
    config = load_config(args.overrides)
    ablate = config.ablate
    out = Path(ablate.out)
    arms = ablate.all_arms()
    if not args.report_only:
        out.mkdir(parents=True, exist_ok=True)
        _check_same_run(out, config)
        jobs = make_jobs(
            ablate.tasks,
            arms,
            ablate.splits,
            ablate.episodes_per_cell,
            ablate.seed,
            ablate.videos_per_arm,
        )
        store = ResultsStore(out / "episodes.csv")
        setup = {
            "config": str((out / "config.yaml").resolve()),
            "videos": str((out / "videos").resolve()),
        }
        try:
            run_jobs(jobs, store, EPISODE_FACTORY, setup, ablate.workers)
        finally:
            write_report(store.results(), out, arms, ablate.tasks, ablate.splits)
    else:
        write_report(read_results(out / "episodes.csv"), out, arms, ablate.tasks, ablate.splits)
    log.info("report: %s", out / "report.md")
    return 0


def _load_store(config: Config, baseline: BaselineConfig):
    from dualctl.data.dataset import EpisodeStore

    torch.set_num_threads(config.trainer.threads)
    return EpisodeStore.load(Path(baseline.data), camera="scene")


def run_train_baseline(args: argparse.Namespace) -> int:
    from dualctl.eval.training import baseline_task, camera_rate, train_regressor

    config = load_config(args.overrides)
    baseline = config.ablate.baseline
    store = _load_store(config, baseline)
    camera_hz = camera_rate(store)
    task = baseline_task(baseline, camera_hz)
    meta = {
        "camera": "scene",
        "camera_hz": camera_hz,
        "data": baseline.data,
        "episodes": len(store),
    }
    work = Path(config.out) / "train" / "baseline"
    train_regressor(store, baseline, task, work, Path(baseline.checkpoint), meta, seed=config.seed)
    return 0


def inverse_dynamics_config(config: Config) -> BaselineConfig:
    """The baseline's network and training settings, predicting one action, on its own budget."""
    return dataclasses.replace(
        config.ablate.baseline,
        chunk=1,
        execute=1,
        max_minutes=config.ablate.inverse_dynamics_minutes,
        checkpoint=config.ablate.inverse_dynamics,
    )


def run_train_inverse(args: argparse.Namespace) -> int:
    from dualctl.eval.training import camera_rate, inverse_dynamics_task, train_regressor

    config = load_config(args.overrides)
    id_config = inverse_dynamics_config(config)
    store = _load_store(config, id_config)
    camera_hz = camera_rate(store)
    gap_s = config.planner.horizon_s / config.planner.horizon
    task = inverse_dynamics_task(gap_s, camera_hz)
    meta = {
        "camera": "scene",
        "camera_hz": camera_hz,
        "gap_s": task.stride / camera_hz,
        "data": id_config.data,
    }
    work = Path(config.out) / "train" / "inverse_dynamics"
    train_regressor(
        store, id_config, task, work, Path(id_config.checkpoint), meta, seed=config.seed
    )
    return 0
