"""Plan latency on one CPU core: ``Planner.plan`` wall time (p50/p99), at the default sampler
settings and a few step counts, on real held-out observations.

    python bench/planner_latency.py [--checkpoint checkpoints/planner] [--heldout data/sim_heldout]
        [--repeats 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from planner_common import load, make_clips, write_result
from rich.console import Console
from rich.table import Table

from dualctl.planner.diffusion_planner import load_planner
from dualctl.types import TACTILE_SHAPE, Observation


def observations(frames, proprio):
    return [
        Observation(
            timestamp=float(i), images={"scene": f}, proprio=p,
            wrench=np.zeros(6, np.float32), tactile=np.zeros(TACTILE_SHAPE, np.float32),
        )
        for i, (f, p) in enumerate(zip(frames, proprio))
    ]  # fmt: skip


def measure(planner, obs, instructions, repeats: int) -> dict[str, float]:
    planner.plan(obs[0], instructions[0])  # warm up (allocator, text cache)
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        planner.plan(obs[i % len(obs)], instructions[i % len(obs)])
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000.0
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "mean_ms": float(ms.mean()), "repeats": repeats}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/planner")
    parser.add_argument("--heldout", default="data/sim_heldout")
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", default="4,6,8,10", help="step counts besides the default")
    args = parser.parse_args()
    planner = load_planner(args.checkpoint, threads=args.threads)
    cfg = planner.config
    clips = make_clips(load(args.heldout, cfg.camera, 8), cfg.horizon, cfg.horizon_s, 2)
    obs = observations(clips.frame, clips.proprio)
    rows = {f"default ({cfg.steps} {cfg.sampler}, w={cfg.guidance})": measure(
        planner, obs, clips.instruction, args.repeats)}  # fmt: skip
    default_steps = cfg.steps
    for steps in (int(s) for s in args.sweep.split(",") if s):
        if steps == default_steps:
            continue
        cfg.steps = steps
        rows[f"{steps} steps"] = measure(planner, obs, clips.instruction, args.repeats // 2)
    cfg.steps = default_steps

    table = Table(title=f"plan latency, {args.threads} thread(s)")
    for column in ("setting", "p50 ms", "p99 ms", "mean ms"):
        table.add_column(column, justify="right")
    for name, row in rows.items():
        table.add_row(name, f"{row['p50_ms']:.1f}", f"{row['p99_ms']:.1f}", f"{row['mean_ms']:.1f}")
    console = Console()
    console.print(table)
    path = write_result("planner_latency", {"checkpoint": args.checkpoint, "threads": args.threads,
                                            "latency": rows})  # fmt: skip
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
