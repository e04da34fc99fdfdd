"""The grip reflex on the scripted expert's arm: what the tracker's touch reflex achieves when the
arm motion is right (the expert's approach, grasp pose and lift), per task. The gap between
this and ``tracker_oracle.py`` is the tracking head's share of the failures.

The expert's own grip force (set from privileged hold and break forces) is replaced by the
reflex's, exactly as :class:`~dualctl.tracker.jepa.JepaTracker` wraps the head's actions,
at the control rate of ``--rate`` Hz.

    MUJOCO_GL=egl python bench/tracker_reflex_expert.py [--tasks Fragile,Slippery]
        [--episodes 20] [--seed 2000] [--split train] [--rate 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path

from dualctl.sim.config import SimConfig
from dualctl.sim.experts import Expert, run_blind
from dualctl.sim.tasks import sample_variation
from dualctl.sim.world import World
from rich.console import Console
from rich.table import Table

from dualctl.data.episode import atomic_write_text
from dualctl.eval.stats import wilson_interval
from dualctl.tracker.grip import GripReflex

RESULTS = Path(__file__).resolve().parent / "results"
#: The tracker's reflex steps its probe once per camera frame (20 Hz in the sim).
PROBE_PERIOD_S = 0.05


def run(task: str, seed: int, split: str, period_s: float) -> dict:
    variation = sample_variation(task, seed, split)
    world = World(task, variation, SimConfig(split=split))
    expert, reflex = Expert(task, world), GripReflex(PROBE_PERIOD_S)
    try:
        status = run_blind(
            world,
            lambda: reflex(expert.act(), world.tactile(), world.time, world.proprio()),
            period_s,
        )
    finally:
        world.close()
    return {"seed": seed, "success": bool(status.success), "failure": status.failure_reason,
            "hold_force": variation.hold_force}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="Fragile,Slippery")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--split", default="train", choices=("train", "heldout"))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--json", default=str(RESULTS / "tracker_reflex_expert.json"))
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"grip reflex on the expert's arm, {args.split} split, seeds "
                        f"{args.seed}..{args.seed + args.episodes - 1}")  # fmt: skip
    for column in ("task", "success", "Wilson 95 %", "failures"):
        table.add_column(column)
    cells = {}
    for task in args.tasks.split(","):
        runs = [run(task, seed, args.split, 1.0 / args.rate)
                for seed in range(args.seed, args.seed + args.episodes)]  # fmt: skip
        wins = sum(r["success"] for r in runs)
        low, high = wilson_interval(wins, len(runs))
        failures = collections.Counter(r["failure"] for r in runs if not r["success"])
        cells[task] = {"successes": wins, "episodes": len(runs), "wilson95": [low, high],
                       "failures": dict(failures), "runs": runs}  # fmt: skip
        table.add_row(task, f"{wins}/{len(runs)}", f"[{low:.2f}, {high:.2f}]",
                      ", ".join(f"{k}:{v}" for k, v in failures.items()))  # fmt: skip
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.json), json.dumps({"split": args.split, "first_seed": args.seed,
                                                   "rate_hz": args.rate, "cells": cells},
                                                  indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
