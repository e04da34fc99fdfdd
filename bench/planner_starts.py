"""Does the plan move from an episode's first frame? Every run of the controller is planned
from that view (the arm still out of sight above the table), and a plan that imagines a still
scene there leaves the tracker nothing to follow.

For each episode's first frame (and ``--also-at`` later steps), the plan's change from the
current frame at 1 s and 2 s ahead (mean absolute pixel difference, 0-255) against the real
future's; a plan whose change at 1 s is under ``STILL_RATIO`` of the real one counts as still.

    python bench/planner_starts.py [--checkpoint checkpoints/planner] \
        [--datasets data/sim_heldout,data/sim] [--per-task 20] [--name planner_starts]
"""

from __future__ import annotations

import argparse

import numpy as np
from planner_common import imagine_all, load, write_result
from rich.console import Console
from rich.table import Table

from dualctl.planner.clips import frame_stride, future_indices
from dualctl.planner.diffusion_planner import load_planner

#: A plan whose change at 1 s is below this fraction of the real change is "still".
STILL_RATIO = 0.25


def change(frames: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Mean absolute pixel difference (0-255) of each frame from its current frame."""
    return np.abs(frames.astype(np.float32) - current.astype(np.float32)).mean(axis=(1, 2, 3))


def first_per_task(data, per_task: int) -> list[int]:
    """Indices of the first ``per_task`` episodes of each task (in file-name order)."""
    picked: dict[str, list[int]] = {}
    for i, task in enumerate(data.tasks):
        if len(picked.setdefault(task, [])) < per_task:
            picked[task].append(i)
    return [i for task in sorted(picked) for i in picked[task]]


def score(planner, data, episodes: list[int], step_s: float) -> dict:
    """Plan vs real change at 1 s and 2 s from step ``step_s`` (s) of ``episodes``, by task."""
    cfg = planner.config
    stride = frame_stride(cfg.horizon, cfg.horizon_s, data.frame_dt)
    t = round(step_s / data.frame_dt)
    frames = np.stack([data.frames[i][t] for i in episodes])
    proprio = np.stack([data.proprio[i][t] for i in episodes])
    plans = imagine_all(planner, frames, proprio, [data.instructions[i] for i in episodes])
    one_s = round(1.0 / (cfg.horizon_s / cfg.horizon)) - 1
    ahead = [future_indices(t, len(data.frames[i]), cfg.horizon, stride) for i in episodes]
    real_1s = change(np.stack([data.frames[i][f[one_s]] for i, f in zip(episodes, ahead)]), frames)
    real_2s = change(np.stack([data.frames[i][f[-1]] for i, f in zip(episodes, ahead)]), frames)
    rows = {}
    for task in sorted({data.tasks[i] for i in episodes}):
        pick = [k for k, i in enumerate(episodes) if data.tasks[i] == task]
        plan_1s = change(plans[pick, one_s], frames[pick])
        plan_2s = change(plans[pick, -1], frames[pick])
        rows[task] = {
            "episodes": len(pick),
            "still": int((plan_1s < STILL_RATIO * real_1s[pick]).sum()),
            "plan_change_1s": float(plan_1s.mean()), "real_change_1s": float(real_1s[pick].mean()),
            "plan_change_2s": float(plan_2s.mean()), "real_change_2s": float(real_2s[pick].mean()),
        }  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/planner")
    parser.add_argument("--datasets", default="data/sim_heldout,data/sim")
    parser.add_argument("--per-task", type=int, default=20, help="episodes per task and folder")
    parser.add_argument("--also-at", default="0.25", help="later start times (s), comma-separated")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="planner_starts")
    args = parser.parse_args()
    planner = load_planner(args.checkpoint, threads=args.threads)
    console, results = Console(), {}
    times = [0.0, *(float(s) for s in args.also_at.split(",") if s)]
    for dataset in args.datasets.split(","):
        data = load(dataset, planner.config.camera, None)
        episodes = first_per_task(data, args.per_task)
        results[dataset] = {f"{s:.2f}": score(planner, data, episodes, s) for s in times}
        table = Table(title=f"plans from step t of {dataset} ({args.checkpoint})")
        for column in ("t s", "task", "still / episodes", "change 1 s plan / real",
                       "change 2 s plan / real"):  # fmt: skip
            table.add_column(column, justify="right")
        for start, rows in results[dataset].items():
            for task, r in rows.items():
                table.add_row(start, task, f"{r['still']}/{r['episodes']}",
                              f"{r['plan_change_1s']:.2f} / {r['real_change_1s']:.2f}",
                              f"{r['plan_change_2s']:.2f} / {r['real_change_2s']:.2f}")  # fmt: skip
        console.print(table)
    path = write_result(args.name, {"checkpoint": args.checkpoint, "still_ratio": STILL_RATIO,
                                    "datasets": results})  # fmt: skip
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
