"""Sim collection speed: scripted-expert episodes with the scene camera rendered at the camera
rate, as ``dualctl collect`` runs them (without writing files). Prints a table and writes
bench/results/sim_speed.json.

    MUJOCO_GL=egl python bench/sim_speed.py [episodes-per-task]
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

from dualctl.sim.config import SimConfig  # noqa: E402
from dualctl.sim.experts import run_expert  # noqa: E402
from dualctl.sim.tasks import TASKS  # noqa: E402

from dualctl.data.episode import atomic_write_text  # noqa: E402


def measure(task: str, episodes: int, config: SimConfig) -> dict:
    run_expert(task, 10_000, "train", config)  # warm the renderer and caches up
    sim_s, frames, successes = 0.0, 0, 0
    start_cpu, start = time.process_time(), time.perf_counter()
    for seed in range(episodes):
        episode = run_expert(task, seed, "train", config)
        sim_s += len(episode) / config.camera_hz
        frames += len(episode)
        successes += bool(episode.meta["success"])
    wall, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {
        "task": task,
        "episodes": episodes,
        "success_rate": successes / episodes,
        "sim_seconds": sim_s,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "physics_steps_per_s": sim_s * config.physics_hz / wall,
        "camera_frames_per_s": frames / wall,
        "real_time_factor": sim_s / wall,
        "real_time_factor_per_cpu_second": sim_s / cpu,
    }


def main() -> None:
    episodes = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    config = SimConfig()
    rows = [measure(task, episodes, config) for task in TASKS]
    print(f"{'task':10s} {'eps':>4s} {'ok':>5s} {'steps/s':>9s} {'frames/s':>9s} "
          f"{'RTF wall':>9s} {'RTF cpu':>8s}")  # fmt: skip
    for r in rows:
        print(f"{r['task']:10s} {r['episodes']:4d} {r['success_rate']:5.2f} "
              f"{r['physics_steps_per_s']:9.0f} {r['camera_frames_per_s']:9.0f} "
              f"{r['real_time_factor']:9.1f} {r['real_time_factor_per_cpu_second']:8.1f}")  # fmt: skip
    total_sim = sum(r["sim_seconds"] for r in rows)
    total = {
        "real_time_factor": total_sim / sum(r["wall_seconds"] for r in rows),
        "real_time_factor_per_cpu_second": total_sim / sum(r["cpu_seconds"] for r in rows),
        "load_average_1min": os.getloadavg()[0],
        "physics_hz": config.physics_hz,
        "camera_hz": config.camera_hz,
        "camera_size": config.camera_size,
    }
    print(
        f"all: {total['real_time_factor']:.1f}x real time (wall), "
        f"{total['real_time_factor_per_cpu_second']:.1f}x per CPU-second; "
        f"load average {total['load_average_1min']:.1f} on {os.cpu_count()} cores"
    )
    out = Path(__file__).parent / "results" / "sim_speed.json"
    atomic_write_text(out, json.dumps({"tasks": rows, "total": total}, indent=2))


if __name__ == "__main__":
    main()
