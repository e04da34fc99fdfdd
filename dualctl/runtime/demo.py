"""``dualctl demo``: the closed loop in the sim with the shipped checkpoints.

For each task, one episode (``seed``): the planner runs in its own process, the tracker in the
control loop at ``tracker.rate_hz``, on the clock ``runtime.clock`` (virtual by default:
deterministic, planner latency ``runtime.plan_latency_s``). Writes ``<out>/<task>.mp4`` and
``.gif`` (camera | plan | force and width traces), ``<out>/demo_summary.json``, and prints a
table. Without ``task=`` every task runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import Config, load_config
from dualctl.data.episode import atomic_write_text
from dualctl.runtime.clock import Clock, VirtualClock
from dualctl.runtime.demo_video import Snapshot, compose_panel, write_videos
from dualctl.runtime.episodes import on_fresh_virtual_clocks
from dualctl.runtime.factories import load_runtime_tracker, make_clock, planner_client
from dualctl.runtime.scheduler import run_controller
from dualctl.runtime.telemetry import RunSummary, Telemetry

log = logging.getLogger(__name__)

#: Every task ends itself (success, failure or its own time limit); this only guards against a
#: task that never reports done.
_EPISODE_CAP_S = 60.0


def register(registry: CommandRegistry) -> None:
    parser = registry.add(
        "demo",
        "run the closed-loop sim demo (all tasks unless task=...) and write videos + summary",
        run,
    )
    add_overrides(parser)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.overrides)
    explicit = any(item.split("=", 1)[0] == "task" for item in args.overrides)
    tasks = _tasks(config.task if explicit else "all")
    out = Path(config.out)
    clock = make_clock(config.runtime)
    if clock.is_virtual:
        results = run_demo_virtual(config, tasks, out)
    else:
        results = clock.run(run_demo(config, tasks, clock, out))
    _print_table(results, out)
    return 0  # a failed episode is a result, not an error of the command


def _tasks(task: str) -> list[str]:
    from dualctl.sim.tasks import TASKS, check_task

    return list(TASKS) if task == "all" else [check_task(task)]


async def run_demo(
    config: Config, tasks: list[str], clock: Clock, out: Path, max_episode_s: float = _EPISODE_CAP_S
) -> list[dict]:
    """One episode per task on ``clock`` (each at most ``max_episode_s`` s); returns one result
    row per task."""
    tracker = load_runtime_tracker(config)
    plans = planner_client(config, clock, tracker.cameras[0])
    started = time.perf_counter()
    rows = []
    try:
        await plans.start()
        log.info("planner process up in %.1f s", time.perf_counter() - started)
        for task in tasks:
            rows.append(await run_task(config, task, clock, tracker, plans, out, max_episode_s))
    finally:
        await plans.close()
    atomic_write_text(out / "demo_summary.json", json.dumps(rows, indent=2))
    return rows


def run_demo_virtual(
    config: Config, tasks: list[str], out: Path, max_episode_s: float = _EPISODE_CAP_S
) -> list[dict]:
    """:func:`run_demo` on the virtual clock, each task on a fresh clock from 0 s (so a task's
    episode is the same whichever tasks ran before it; see ``on_fresh_virtual_clocks``)."""
    tracker = load_runtime_tracker(config)
    plans = planner_client(config, VirtualClock(), tracker.cameras[0])

    async def episode(task: str, clock: VirtualClock) -> dict:
        return await run_task(config, task, clock, tracker, plans, out, max_episode_s)

    rows = list(on_fresh_virtual_clocks(plans, tasks, episode))
    atomic_write_text(out / "demo_summary.json", json.dumps(rows, indent=2))
    return rows


def _telemetry_path(config: Config, task: str) -> str | None:
    path = config.runtime.telemetry_path
    if not path:
        return None
    if "{task}" in path:
        return path.format(task=task)
    p = Path(path)
    return str(p.with_name(f"{p.stem}_{task}{p.suffix or '.jsonl'}"))


async def run_task(
    config: Config, task: str, clock: Clock, tracker, plans, out: Path, max_episode_s: float
) -> dict:
    """Run episode ``seed`` of ``task``, write its videos, return its summary row."""
    snapshots: list[Snapshot] = []
    camera = tracker.cameras[0]

    def on_frame(now, observation, plan, reference_t=None):
        image = observation.images[camera].copy()
        snapshots.append(Snapshot(now, image, plan, tracker.lookahead_s, reference_t))

    telemetry = Telemetry(
        _telemetry_path(config, task),
        config.runtime.safety.deadline_tolerance_s,
        status_line=config.runtime.status_line,
    )
    row = await run_episode(config, task, config.seed, clock, tracker, plans, telemetry,
                            max_episode_s=max_episode_s, on_frame=on_frame)  # fmt: skip
    _write_episode_video(out, task, row, snapshots, telemetry, config.sim.camera_hz)
    verdict = "success" if row["success"] else row["failure"]
    log.info("%s: %s in %.1f s wall", task, verdict, row["wall_s"])
    return row


async def run_episode(
    config: Config,
    task: str,
    seed: int,
    clock: Clock,
    tracker,
    plans,
    telemetry: Telemetry,
    *,
    max_episode_s: float = _EPISODE_CAP_S,
    on_frame=None,
) -> dict:
    """One closed-loop sim episode (task ``task``, episode ``seed`` of ``sim.split``) until the
    task ends; returns its summary row. ``telemetry`` is closed at the end."""
    from dualctl.sim.body import SimBody
    from dualctl.sim.config import with_cameras

    body = SimBody(task, seed, with_cameras(config.sim, tracker.cameras), clock.now)
    wall = time.perf_counter()
    await body.connect()
    try:
        summary = await run_controller(
            body, tracker, plans, clock, config.runtime, telemetry,
            rate_hz=config.tracker.rate_hz, instruction=body.instruction,
            camera=tracker.cameras[0], should_stop=lambda: body.status().done,
            max_duration_s=max_episode_s, on_frame=on_frame,
        )  # fmt: skip
        status = body.status()
    finally:
        await body.close()
        telemetry.close()
    return _row(task, body.instruction, status, summary, time.perf_counter() - wall)


def _row(task: str, instruction: str, status, summary: RunSummary, wall_s: float) -> dict:
    return {
        "task": task,
        "instruction": instruction,
        "success": bool(status.success),
        "failure": "" if status.success else str(status.failure_reason or "unfinished"),
        "episode_s": round(summary.duration_s, 3),
        "wall_s": round(wall_s, 2),
        "summary": summary.to_dict(),
    }


def _write_episode_video(out, task, row, snapshots, telemetry: Telemetry, fps: float) -> None:
    if not snapshots:
        return
    traces = {name: telemetry.array(name) for name in telemetry.columns}
    t_end = float(traces["t"][-1]) if len(traces["t"]) else snapshots[-1].t
    verdict = "SUCCESS" if row["success"] else f"FAILED ({row['failure']})"
    frames = []
    for snap in snapshots:
        elapsed = snap.t - snapshots[0].t
        caption = f"{task}: {row['instruction']}   t={elapsed:5.2f}s"
        if snap is snapshots[-1]:
            caption += f"   {verdict}"
        frames.append(compose_panel(snap, traces, t_end, caption))
    frames.extend([frames[-1]] * int(fps))  # hold the verdict for a second
    write_videos(frames, out / f"{task}.mp4", out / f"{task}.gif", fps)


def _print_table(rows: list[dict], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dualctl demo: closed loop, planner process + tracker")
    for column in ("task", "result", "loop Hz", "late p50/p99 ms", "misses", "plans",
                   "plan latency s", "interventions", "wall s"):  # fmt: skip
        table.add_column(column)
    for row in rows:
        s = row["summary"]
        table.add_row(
            row["task"],
            "success" if row["success"] else f"failed: {row['failure']}",
            f"{s['loop_rate_hz']:.1f}",
            f"{s['lateness_p50_ms']:.2f}/{s['lateness_p99_ms']:.2f}",
            str(s["deadline_misses"]),
            str(s["plans"]),
            f"{s['plan_latency_p50_s']:.3f}",
            str(sum(s["interventions"].values())),
            f"{row['wall_s']:.1f}",
        )
    console = Console()
    console.width = max(console.width, 120)
    console.print(table)
    console.print(f"videos and demo_summary.json in {out}/")


def replace_runtime(config: Config, **changes) -> Config:
    """``config`` with some ``runtime`` keys changed (for benches and tests)."""
    return dataclasses.replace(config, runtime=dataclasses.replace(config.runtime, **changes))
