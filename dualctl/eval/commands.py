"""``dualctl ablate`` (run every arm on the same seeds, resumably, then write the report) and
``dualctl train baseline`` / ``dualctl train inverse-dynamics`` (the two regressors the
ablation's baseline and planner-only arms need)."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
from pathlib import Path

from omegaconf import OmegaConf

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import Config, load_config, to_yaml
from dualctl.data.episode import atomic_write_text
from dualctl.errors import ConfigError
from dualctl.eval.arms import arm_spec
from dualctl.eval.config import BaselineConfig
from dualctl.eval.results import ResultsStore, read_results
from dualctl.eval.runner import make_jobs, run_jobs
from dualctl.runtime.factories import check_planner_camera

log = logging.getLogger(__name__)


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


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _outcome(config: Config) -> dict:
    """Every setting that can change an episode's outcome (the resolved config without the keys
    that only select episodes), and the digest of every checkpoint's weights (a retrained model
    makes a new run, not a continuation)."""
    ablate = dataclasses.replace(config.ablate, **_EPISODE_SELECTION)
    settings = OmegaConf.to_container(
        OmegaConf.structured(dataclasses.replace(config, ablate=ablate))
    )
    a = config.ablate
    folders = (
        a.tracker_checkpoint,
        *a.tracker_ensemble,
        a.planner_checkpoint,
        a.baseline.checkpoint,
        a.inverse_dynamics,
    )
    weights = {
        str(p): _digest(p) for folder in folders for p in sorted(Path(folder).glob("*.safetensors"))
    }
    return {**_flatten(settings), **{f"weights:{k}": v for k, v in weights.items()}}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _check_same_run(out: Path, config: Config) -> None:
    """Refuse to mix episodes run under different settings into one results file. Settings
    added to the schema since the first run (other parts grow) only warn: their defaults are
    what the first run used."""
    saved = out / "outcome.json"
    current = _outcome(config)
    if saved.is_file():
        before = json.loads(saved.read_text())
        changed = sorted(k for k in before.keys() & current.keys() if before[k] != current[k])
        changed += sorted(k for k in before.keys() ^ current.keys() if k.startswith("weights:"))
        if changed:
            raise ConfigError(
                "ablate.out", str(out),
                f"a fresh folder: its results were run with other {', '.join(changed[:4])} "
                f"(see {saved}); choose another ablate.out or move the old one away",
            )  # fmt: skip
        for key in sorted(current.keys() ^ before.keys()):
            log.warning("setting %s is new or gone since this folder's first run", key)
    atomic_write_text(saved, json.dumps(current, indent=1, sort_keys=True))
    atomic_write_text(out / "config.yaml", to_yaml(config))


def run_ablate(args: argparse.Namespace) -> int:
    config = load_config(args.overrides)
    ablate = config.ablate
    out = Path(ablate.out)
    arms = ablate.all_arms()
    jobs = make_jobs(
        ablate.tasks,
        arms,
        ablate.splits,
        ablate.episodes_per_cell,
        ablate.seed,
        ablate.videos_per_arm,
    )
    if args.report_only:
        results = read_results(out / "episodes.csv")
    else:
        _check_planner_camera(config, arms)
        out.mkdir(parents=True, exist_ok=True)
        _check_same_run(out, config)
        store = ResultsStore(out / "episodes.csv")
        setup = {
            "config": str((out / "config.yaml").resolve()),
            "videos": str((out / "videos").resolve()),
        }
        try:
            run_jobs(jobs, store, EPISODE_FACTORY, setup, ablate.workers)
        finally:
            results = store.results()
            _report(results, jobs, out, config)
        return 0
    _report(results, jobs, out, config)
    return 0


def _check_planner_camera(config: Config, arms: list[str]) -> None:
    """Refuse, before any episode runs, a planner that imagines another camera than the tracker
    reads: every arm that tracks its plans would only hold."""
    if not any(arm_spec(a).uses_planner and arm_spec(a).uses_tracker for a in arms):
        return
    from dualctl.tracker.checkpoint import read_checkpoint_config

    ablate = config.ablate
    camera = read_checkpoint_config(Path(ablate.tracker_checkpoint)).camera
    check_planner_camera(ablate.planner_checkpoint, camera, "ablate.planner_checkpoint")


def _report(results, jobs, out: Path, config: Config) -> None:
    """The report of exactly the configured cells: results of other arms, tasks or seeds in the
    same folder (an earlier, larger run) are left out."""
    from dualctl.eval.summary import write_report  # matplotlib: slow to import

    wanted = {job.key for job in jobs}
    chosen = [r for r in results if r.key in wanted]
    a = config.ablate
    if write_report(chosen, out, a.all_arms(), a.tasks, a.splits) is not None:
        log.info("report of %d of %d episodes: %s", len(chosen), len(jobs), out / "report.md")


def _load_store(config: Config, baseline: BaselineConfig):
    import torch

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
