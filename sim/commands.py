"""``dualctl collect``: record scripted-expert episodes into a dataset folder.

    dualctl collect task=Fragile episodes=150 out=data/sim            # seeds 0..149, train split
    dualctl collect task=all episodes=30 seed=100000 sim.split=heldout out=data/sim_heldout

``task`` may be one task, a comma-separated list or ``all``. Episode ``s`` of task ``T`` is
written to ``<out>/episodes/<t>_<s:06d>.npz`` (``t`` = lower-case task); a re-run skips the
files that exist, so an interrupted collection resumes. Several tasks may share a folder:
``dataset.json`` lists every task collected into it.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from dualctl.sim.config import SimConfig
from dualctl.sim.experts import run_expert
from dualctl.sim.tasks import TASKS, check_task
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import load_config
from dualctl.data.episode import Episode, read_dataset_info, write_dataset_info, write_episode
from dualctl.errors import DataError

log = logging.getLogger(__name__)


def register(registry: CommandRegistry) -> None:
    parser = registry.add("collect", "record scripted-expert episodes into a dataset", run)
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.overrides)
    tasks = parse_tasks(config.task)
    seeds = range(config.seed, config.seed + config.episodes)
    counts = collect(Path(config.out), tasks, seeds, config.sim)
    console = Console()
    for task, (done, ok) in counts.items():
        console.print(f"{task}: {done} episodes in {config.out}, {ok} successful")
    return 0


def parse_tasks(spec: str) -> list[str]:
    if spec == "all":
        return list(TASKS)
    return [check_task(t.strip()) for t in spec.split(",")]


def episode_name(task: str, seed: int) -> str:
    return f"{task.lower()}_{seed:06d}.npz"


def collect(out: Path, tasks: list[str], seeds: range, config: SimConfig) -> dict:
    """Record expert episodes of ``tasks`` for ``seeds`` into dataset folder ``out``, skipping
    those already there. Returns task -> (episodes present, successful ones recorded now)."""
    _update_dataset_info(out, tasks, config)
    counts = {}
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("ok {task.fields[ok]}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns) as progress:
        for task in tasks:
            bar = progress.add_task(f"collect {task}", total=len(seeds), ok=0)
            ok = 0
            for index, seed in enumerate(seeds):
                path = out / "episodes" / episode_name(task, seed)
                if not path.exists():
                    episode = run_expert(task, seed, config.split, config)
                    write_episode(path, episode)
                    ok += bool(episode.meta["success"])
                    if index < config.video_episodes:
                        save_video(out / "videos" / f"{path.stem}.mp4", episode, config.camera_hz)
                progress.update(bar, advance=1, ok=ok)
            counts[task] = (sum((out / "episodes" / episode_name(task, s)).exists()
                                for s in seeds), ok)  # fmt: skip
    return counts


def _update_dataset_info(out: Path, tasks: list[str], config: SimConfig) -> None:
    """Write dataset.json, merging the task list with what the folder already holds; refuse to
    mix episodes recorded with different cameras or rates."""
    size = config.camera_size
    cameras = {name: [size, size] for name in config.cameras}
    info = {
        "source": "dualctl collect (scripted experts in the MuJoCo sim)",
        "cameras": cameras,
        "camera_hz": config.camera_hz,
        "physics_hz": config.physics_hz,
        "split": config.split,
        "tasks": list(tasks),
        "episode_name": "episodes/<task lower-case>_<seed:06d>.npz",
    }
    if (out / "dataset.json").exists():
        old = read_dataset_info(out)
        for key in ("cameras", "camera_hz", "split"):
            if old.get(key) != info[key]:
                raise DataError(
                    f"dataset {out} was recorded with {key}={old.get(key)!r}, this run has "
                    f"{info[key]!r}: collect into another folder or match the settings"
                )
        info["tasks"] = sorted(set(old.get("tasks", [])) | set(tasks), key=TASKS.index)
    info["sim"] = dataclasses.asdict(config)
    info.pop("format_version", None)
    write_dataset_info(out, info)


def save_video(path: Path, episode: Episode, fps: float, scale: int = 4) -> None:
    """An mp4 of the episode's cameras side by side, upscaled ``scale`` times, written
    atomically."""
    frames = np.concatenate([episode.images[name] for name in sorted(episode.images)], axis=2)
    frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".mp4")
    os.close(fd)
    try:
        imageio.mimwrite(tmp, list(frames), fps=fps, macro_block_size=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
