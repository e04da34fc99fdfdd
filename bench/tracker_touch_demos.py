"""Demonstrations whose grip force comes from touch alone, for training the tracker's head, and
the success rate of that teacher per task.

Why: the sim's scripted expert sets the grip force before it touches the object, from
privileged state (hold and break force). Nothing the robot senses before the lift tells those,
so a head cloned from it can only learn their average, which crushes light fragile objects and
drops heavy slippery ones. This teacher runs the same expert for the arm and overrides the grip
force with a rule that uses only what the fingertips feel (``dualctl.sim.experts.TouchGrip``,
the probe in ``dualctl/tracker/grip.py``):

- close at the gripper's minimum force (20 N, below every object's break force);
- lift slowly; once the load has stopped rising, raise the force by ``GROW`` per frame; after
  each raise compare shear/normal with the step before: while slipping it stays at the
  friction coefficient, once the object is carried it falls as 1/normal;
- when carried, hold ``MARGIN`` x the normal force felt, then let the expert lift at speed.

    MUJOCO_GL=egl python bench/tracker_touch_demos.py --out data/sim_touch [--episodes 150]
        [--seed 0] [--split train] [--tasks Lift,Fragile,Slippery,Place] [--wrist-camera]

``--wrist-camera`` records the gripper's wrist camera beside the scene camera,
``--overhead-camera`` the steeper overhead view. Resumable: episodes already in ``--out`` are
kept (their outcome read back), not run again. Processes recording other tasks into the same
folder merge their task lists in ``dataset.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from dualctl.sim.config import SimConfig
from dualctl.sim.experts import Expert, TouchGrip, episode_meta, run_episode, steps_to_episode
from dualctl.sim.tasks import TASKS, sample_variation
from dualctl.sim.world import World
from rich.console import Console
from rich.progress import Progress

from dualctl.data.episode import (
    Episode,
    atomic_write_text,
    read_dataset_info,
    read_episode,
    write_dataset_info,
    write_episode,
)
from dualctl.eval.stats import wilson_interval

RESULTS = Path(__file__).resolve().parent / "results"


def run_teacher(task: str, seed: int, config: SimConfig) -> Episode:
    """One episode of the touch teacher, recorded like ``dualctl collect`` records the expert."""
    variation = sample_variation(task, seed, config.split)
    world = World(task, variation, config)
    try:
        teacher = TouchGrip(Expert(task, world), world)
        steps = run_episode(world, teacher.act, config.camera_hz)
    finally:
        world.close()
    meta = episode_meta(world, seed, config.split, config, teacher="touch_grip")
    return steps_to_episode(steps, world.cameras, meta)


def record_info(out: Path, config: SimConfig, cameras, tasks: list[str]) -> None:
    """Write dataset.json with ``tasks`` and those the folder's file already lists."""
    known = read_dataset_info(out).get("tasks", []) if (out / "dataset.json").is_file() else []
    write_dataset_info(out, {
        "source": "bench/tracker_touch_demos.py (sim expert arm, touch-only grip force)",
        "cameras": {c: [config.camera_size] * 2 for c in cameras}, "camera_hz": config.camera_hz,
        "physics_hz": config.physics_hz, "split": config.split,
        "tasks": [t for t in TASKS if t in {*known, *tasks}],
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/sim_touch")
    parser.add_argument("--tasks", default="Lift,Fragile,Slippery,Place")
    parser.add_argument("--episodes", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default="train", choices=("train", "heldout"))
    parser.add_argument("--wrist-camera", action="store_true", help="also record the wrist view")
    parser.add_argument("--overhead-camera", action="store_true",
                        help="also record the steeper overhead view")  # fmt: skip
    args = parser.parse_args()
    config = SimConfig(split=args.split, wrist_camera=args.wrist_camera,
                       overhead_camera=args.overhead_camera)  # fmt: skip
    cameras = config.cameras
    out = Path(args.out)
    tasks = args.tasks.split(",")
    record_info(out, config, cameras, tasks)
    outcomes = collections.defaultdict(collections.Counter)
    with Progress() as progress:
        for task in tasks:
            bar = progress.add_task(f"touch teacher {task}", total=args.episodes)
            for seed in range(args.seed, args.seed + args.episodes):
                path = out / "episodes" / f"{task.lower()}_{seed:06d}.npz"
                if path.is_file():
                    meta = read_episode(path).meta
                else:
                    episode = run_teacher(task, seed, config)
                    write_episode(path, episode)
                    meta = episode.meta
                outcomes[task][meta["failure_reason"] or "success"] += 1
                progress.update(bar, advance=1)
    record_info(out, config, cameras, tasks)  # again: a process beside this one may have written
    result = {}
    for task, counts in outcomes.items():
        wins, n = counts["success"], sum(counts.values())
        low, high = wilson_interval(wins, n)
        result[task] = {"successes": wins, "episodes": n, "wilson95": [low, high],
                        "outcomes": dict(counts)}  # fmt: skip
        Console().print(f"{task}: {wins}/{n} [{low:.2f}, {high:.2f}] {dict(counts)}")
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / f"tracker_touch_demos_{args.split}.json", json.dumps(
        {"out": str(out), "first_seed": args.seed, "split": args.split, "tasks": result},
        indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
