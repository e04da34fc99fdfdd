"""Contact reflex latency in real-time mode: from the fingertips' force passing a threshold to a
changed gripper command.

In the tracker's seat, a bench driver: the sim's scripted expert (privileged state) descends on
the Lift block and closes slowly with a grip force of 100 N, plus a reflex: once the measured
tactile grip force passes ``--threshold`` (N) it stops closing (width command = current width).
The path measured is the runtime's: observe -> act -> safety filter -> body.act, in one tick of
the real-time loop at ``tracker.rate_hz``. The sim samples tactile at each tick's observation,
so the crossing happened at most one tick earlier: reported are the upper bound (previous
tick's observation -> command sent) and the lower bound (this tick's observation -> sent).

    .venv/bin/python bench/runtime_reflex.py [--episodes 10] [--threshold 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # offscreen rendering, before mujoco loads
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

import numpy as np
from rich.console import Console
from rich.table import Table

from dualctl.config import load_config
from dualctl.data.episode import atomic_write_text
from dualctl.planner.base import Planner
from dualctl.runtime.factories import make_clock
from dualctl.runtime.planner_process import InProcessPlanClient
from dualctl.runtime.safety import grip_force
from dualctl.runtime.scheduler import Controller
from dualctl.runtime.telemetry import Telemetry
from dualctl.tracker.base import Tracker
from dualctl.types import PROPRIO_FIELDS, Action, GripperCommand, Plan

RESULTS = Path(__file__).parent / "results" / "runtime_reflex.json"
SQUEEZE_N = 100.0


class ReflexDriver(Tracker):
    """Bench driver: the sim's scripted expert in the tracker's seat (it ignores the latent
    reference and reads the world's privileged state), with a contact reflex."""

    latent_dim = 1
    lookahead_s = 0.0

    def __init__(self, expert, threshold_n: float):
        self.expert, self.threshold_n = expert, threshold_n

    def encode(self, frames):
        return np.zeros((len(frames), 1), np.float32)

    def act(self, observation, latent, reference):
        action = self.expert.act()
        if grip_force(observation) > self.threshold_n:
            width = float(observation.proprio[PROPRIO_FIELDS.index("width")])
            gripper = GripperCommand(width, action.gripper.speed_mps, action.gripper.force_n)
            return Action(action.ee_velocity, gripper, action.timestamp)
        return action

    def reset(self):
        return None


class StillPlanner(Planner):
    """Bench driver: "keep looking like this" (the expert does not need a reference)."""

    def plan(self, observation, instruction):
        image = observation.images["scene"]
        times = observation.timestamp + 0.25 * np.arange(1, 9)
        return Plan(np.stack([image] * 8), times, observation.timestamp, times[-1], instruction)


async def one_episode(config, seed: int, clock, threshold: float) -> dict:
    from dualctl.sim.body import SimBody
    from dualctl.sim.experts import Expert

    body = SimBody("Lift", seed, config.sim, clock.now)
    await body.connect()
    driver = ReflexDriver(Expert("Lift", body.world, grip_force=SQUEEZE_N), threshold)
    telemetry = Telemetry(deadline_tolerance_s=config.runtime.safety.deadline_tolerance_s)
    released_at = []

    def stop() -> bool:
        """End 0.2 s after the first contact."""
        force = telemetry.columns["grip_force_n"]
        if force and force[-1] > threshold and not released_at:
            released_at.append(clock.now())
        return bool(released_at) and clock.now() - released_at[0] > 0.2

    controller = Controller(
        body, driver, InProcessPlanClient(StillPlanner(), clock), clock, config.runtime,
        telemetry, rate_hz=config.tracker.rate_hz, instruction=body.instruction,
        should_stop=stop, max_duration_s=8.0,
    )  # fmt: skip
    try:
        await controller.run()
    finally:
        await body.close()
    t, force = telemetry.array("t"), telemetry.array("grip_force_n")
    compute, cmd_width = telemetry.array("compute_s"), telemetry.array("cmd_width_m")
    above = np.flatnonzero(force > threshold)
    if len(above) == 0 or above[0] == 0:
        return {"seed": seed, "contact": False}
    i = int(above[0])
    return {
        "seed": seed,
        "contact": True,
        "changed": bool(cmd_width[i] != cmd_width[i - 1]),
        "lower_ms": 1e3 * compute[i],
        "upper_ms": 1e3 * (t[i] - t[i - 1] + compute[i]),
        "force_n": float(force[i]),
    }


async def main_async(episodes: int, threshold: float) -> dict:
    load_at_start = os.getloadavg()  # the machine is shared: say how busy it was
    config = load_config(["runtime.clock=real", "runtime.status_line=false"])
    clock = make_clock(config.runtime)
    await clock.prepare()
    rows = [await one_episode(config, seed, clock, threshold) for seed in range(episodes)]
    hits = [r for r in rows if r["contact"]]
    upper = np.array([r["upper_ms"] for r in hits])
    lower = np.array([r["lower_ms"] for r in hits])
    return {
        "rate_hz": config.tracker.rate_hz,
        "threshold_n": threshold,
        "episodes": episodes,
        "contacts": len(hits),
        "command_changed_in_same_tick": sum(r["changed"] for r in hits),
        "upper_ms": {"p50": float(np.median(upper)), "max": float(upper.max())} if hits else {},
        "lower_ms": {"p50": float(np.median(lower)), "max": float(lower.max())} if hits else {},
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=40.0)
    args = parser.parse_args()
    result = asyncio.run(main_async(args.episodes, args.threshold))
    table = Table(title=f"contact reflex, real time, {result['rate_hz']:.0f} Hz loop, "
                  f"threshold {result['threshold_n']:.0f} N")  # fmt: skip
    for column in ("", "contacts", "changed same tick", "p50 ms", "max ms"):
        table.add_column(column)
    for name in ("upper", "lower"):
        label = "contact -> command (upper bound)" if name == "upper" else "sample -> command"
        stats = result[f"{name}_ms"]
        table.add_row(
            label, f"{result['contacts']}/{result['episodes']}",
            str(result["command_changed_in_same_tick"]),
            f"{stats.get('p50', float('nan')):.2f}", f"{stats.get('max', float('nan')):.2f}",
        )  # fmt: skip
    Console().print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
