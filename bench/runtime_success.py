"""Closed-loop success of planner + tracker, per task, with and without an injected planner
delay, on the virtual clock (deterministic; the planner runs in its own process exactly as in
``dualctl demo``, its latency simulated as ``runtime.plan_latency_s`` + the delay).

Episodes are seeds S..S+N-1 of ``sim.split`` (``--first-seed S``, default 0: the seeds the
README's figures use; the datasets hold train seeds 0-149, so ``--first-seed 150`` gives
episodes no model was trained on); 95 % Wilson intervals. Resumable: finished
episodes are kept in ``bench/results/runtime_success_episodes.jsonl``, keyed by the code, the
checkpoints and the settings (delete it to start over).

    .venv/bin/python bench/runtime_success.py [--episodes 20] [--first-seed 0] [--delays 0,1]
        [--tasks all]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from contextlib import closing
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering, before mujoco loads
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from dualctl.config import load_config  # noqa: E402
from dualctl.data.episode import atomic_write_text  # noqa: E402
from dualctl.eval.stats import mcnemar_exact_p, wilson_interval  # noqa: E402
from dualctl.runtime.clock import VirtualClock  # noqa: E402
from dualctl.runtime.demo import run_episode  # noqa: E402
from dualctl.runtime.episodes import on_fresh_virtual_clocks  # noqa: E402
from dualctl.runtime.factories import (  # noqa: E402
    PLANNER_RUN_KEYS,
    load_runtime_tracker,
    planner_client,
)
from dualctl.runtime.telemetry import Telemetry  # noqa: E402
from dualctl.tracker.config import RUN_KEYS as TRACKER_RUN_KEYS  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "runtime_success.json"
EPISODES = Path(__file__).parent / "results" / "runtime_success_episodes.jsonl"
#: Runtime settings that do not change an episode (every other one, safety limits included,
#: keys the cached results).
COSMETIC = ("status_line", "telemetry_path")


#: Folders whose Python sources key the cached results: a change to the controller's code
#: must not reuse episodes run with the old code.
SOURCE_DIRS = ("dualctl", "sim", "hardware")


def source_digest() -> str:
    """A digest of every Python source of the controller (``SOURCE_DIRS``)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha1()
    for folder in SOURCE_DIRS:
        for path in sorted((root / folder).rglob("*.py")):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def fingerprint(config) -> str:
    """Identifies the code, checkpoints and settings, so results of other models or of other
    code are not reused."""
    parts = [config.sim.split, str(config.runtime.plan_latency_s), str(config.tracker.rate_hz)]
    parts.append(f"code={source_digest()}")
    parts += [f"tracker.{k}={getattr(config.tracker, k)}" for k in TRACKER_RUN_KEYS]
    parts += [f"planner.{k}={getattr(config.planner, k)}" for k in PLANNER_RUN_KEYS]
    parts += [f"runtime.{k}={v}" for k, v in vars(config.runtime).items() if k not in COSMETIC]
    for folder in (config.tracker.checkpoint, config.planner.checkpoint):
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                stat = path.stat()
                parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:12]


def load_done(key: str) -> dict[tuple, dict]:
    if not EPISODES.is_file():
        return {}
    rows = [json.loads(line) for line in EPISODES.read_text().splitlines() if line.strip()]
    return {(r["delay_s"], r["task"], r["seed"]): r for r in rows if r.get("key") == key}


def run_all(config, jobs: list[tuple], done: dict, key: str) -> None:
    """Each episode on a fresh virtual clock from 0 s (``on_fresh_virtual_clocks``), so an
    episode replays the same whatever ran before it in this process."""
    tracker = load_runtime_tracker(config)
    plans = planner_client(config, VirtualClock(), tracker.cameras[0])
    base_latency = config.runtime.plan_latency_s
    EPISODES.parent.mkdir(parents=True, exist_ok=True)

    async def episode(job, clock):
        delay, task, seed = job
        plans.latency_s = base_latency + delay
        return await run_episode(config, task, seed, clock, tracker, plans,
                                 Telemetry(deadline_tolerance_s=1.0))  # fmt: skip

    episodes = on_fresh_virtual_clocks(plans, jobs, episode)
    with closing(episodes), Progress() as progress, EPISODES.open("a") as log_file:
        bar = progress.add_task("episodes", total=len(jobs))
        for (delay, task, seed), row in zip(jobs, episodes):
            record = {
                "delay_s": delay, "task": task, "seed": seed, "success": row["success"],
                "failure": row["failure"], "episode_s": row["episode_s"],
                "wall_s": row["wall_s"], "plans": row["summary"]["plans"],
                "following": row["summary"]["following_fraction"], "key": key,
            }  # fmt: skip
            log_file.write(json.dumps(record) + "\n")
            log_file.flush()
            done[(delay, task, seed)] = record
            progress.advance(bar)


def summarise(done: dict, delays, tasks, seeds: range) -> list[dict]:
    rows = []
    for task in tasks:
        for delay in delays:
            runs = [done[(delay, task, s)] for s in seeds if (delay, task, s) in done]
            wins = sum(r["success"] for r in runs)
            low, high = wilson_interval(wins, len(runs)) if runs else (float("nan"),) * 2
            failures: dict[str, int] = {}
            for r in runs:
                if not r["success"]:
                    failures[r["failure"]] = failures.get(r["failure"], 0) + 1
            rows.append({
                "task": task, "delay_s": delay, "episodes": len(runs), "successes": wins,
                "rate": wins / len(runs) if runs else float("nan"), "wilson95": [low, high],
                "failures": failures,
                "following": sum(r["following"] for r in runs) / max(len(runs), 1),
            })  # fmt: skip
    return rows


def paired(done: dict, delays, tasks, seeds: range) -> list[dict]:
    """Each injected delay against the first delay, seed by seed: the episodes that succeed
    without it and fail with it (lost), the reverse (gained), and McNemar's exact p. The closed
    loop is chaotic, so one seed's outcome flips either way under any change; only a lost/gained
    imbalance beyond that churn is a cost."""
    rows = []
    base = delays[0]
    for task in tasks:
        for delay in delays[1:]:
            pairs = [(done[(base, task, s)]["success"], done[(delay, task, s)]["success"])
                     for s in seeds if (base, task, s) in done and (delay, task, s) in done]  # fmt: skip
            lost = sum(1 for a, b in pairs if a and not b)
            gained = sum(1 for a, b in pairs if b and not a)
            rows.append({
                "task": task, "delay_s": delay, "against_s": base, "pairs": len(pairs),
                "lost": lost, "gained": gained, "mcnemar_p": mcnemar_exact_p(lost, gained),
            })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--delays", default="0,1")
    parser.add_argument("--tasks", default="all")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. sim.split=heldout")
    args = parser.parse_args()
    from dualctl.sim.tasks import TASKS

    tasks = list(TASKS) if args.tasks == "all" else args.tasks.split(",")
    delays = [float(d) for d in args.delays.split(",")]
    config = load_config(["runtime.clock=virtual", "runtime.status_line=false", *args.overrides])
    key = fingerprint(config)
    done = load_done(key)
    seeds = range(args.first_seed, args.first_seed + args.episodes)
    jobs = [(d, t, s) for d in delays for t in tasks for s in seeds
            if (d, t, s) not in done]  # fmt: skip
    started = time.perf_counter()
    if jobs:
        run_all(config, jobs, done, key)
    # Every task with episodes on record for these models, so runs split across processes
    # (``--tasks Lift,Fragile`` beside ``--tasks Slippery,Place``) each write the whole table.
    done = load_done(key)
    tasks = [t for t in TASKS if t in tasks or any(k[1] == t for k in done)]
    rows = summarise(done, delays, tasks, seeds)
    table = Table(title=f"closed-loop success, planner + tracker ({config.sim.split} split, "
                  f"virtual time, base plan latency {config.runtime.plan_latency_s} s)")  # fmt: skip
    for column in ("task", "injected delay s", "success", "95% Wilson", "failures", "following"):
        table.add_column(column)
    for r in rows:
        low, high = r["wilson95"]
        table.add_row(
            r["task"], f"{r['delay_s']:.1f}", f"{r['successes']}/{r['episodes']}",
            f"[{low:.2f}, {high:.2f}]", json.dumps(r["failures"]), f"{r['following']:.2f}",
        )  # fmt: skip
    Console().print(table)
    changes = paired(done, delays, tasks, seeds)
    if changes:
        table = Table(title=f"the same seeds with and without the delay (against "
                      f"{delays[0]:.1f} s; McNemar's exact test)")  # fmt: skip
        for column in ("task", "injected delay s", "seeds", "lost", "gained", "p"):
            table.add_column(column)
        for c in changes:
            table.add_row(c["task"], f"{c['delay_s']:.1f}", str(c["pairs"]), str(c["lost"]),
                          str(c["gained"]), f"{c['mcnemar_p']:.3f}")  # fmt: skip
        Console().print(table)
    result = {
        "rows": rows, "paired": changes, "split": config.sim.split,
        "episodes_per_cell": args.episodes,
        "first_seed": args.first_seed,
        "base_plan_latency_s": config.runtime.plan_latency_s,
        "wall_s_this_run": time.perf_counter() - started,
    }  # fmt: skip
    atomic_write_text(RESULTS, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
