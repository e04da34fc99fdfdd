"""Closed-loop tracking in sim with an oracle reference: for each (task, seed, split) the
scripted expert runs first, its recorded frames are encoded, and the tracker follows those
latents (reference = expert latent at lookahead after the point of the expert's timeline the
robot is at, linearly interpolated, held at the end). That point is the clock (``--align
clock``: the robot must keep the expert's pace, and a late robot is shown frames further and
further ahead) or the robot's state (``--align state``, the default: the expert step whose
gripper pose best matches the robot's, at most ``--window`` s past the last match, as the
runtime's oracle planner aligns, and as a planner conditioned on the current frame would). A
synchronous loop on a virtual clock: ``act`` at ``--rate`` Hz, ``encode`` whenever the SimBody
has rendered a new camera frame. ``--ensemble`` adds checkpoints acting with ``--checkpoint``
as one (their actions averaged, :mod:`dualctl.tracker.ensemble`). Arms: the full
tracker, and (on Fragile and Slippery) the same checkpoint without the grip reflex (the head's
own grip force) and with force and tactile dropped (which also turns the reflex off). Each
run also records the robot's yaw at its first close against the expert's (wrapped to a quarter
turn, as a square block looks the same every quarter turn) and how far across the table its
hand then is from the block's centre (the expert closes on it), and how far the object has slid
down the fingers since they first held it, when the grip reflex called it carried and at the
end, with the force then held over the object's hold force (what tells a drop's cause apart:
the probe's slide or one during the carry, too little force or not).

    MUJOCO_GL=egl python bench/tracker_oracle.py [--checkpoint checkpoints/tracker]
        [--episodes 50] [--seed 4000] [--split train] [--align state] [--window 1.0] [--rate 200]
        [--arms full,no reflex,no force/tactile] [--lookahead S] [--ensemble DIR,...]
        [--grasp-pose DIR|off] [--hand-pose DIR|off] [--place-pose DIR|off] [--heavy-probe-speed S]
        [--guarded-descent on|off] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from dualctl.sim.body import SimBody
from dualctl.sim.config import SimConfig, with_cameras
from dualctl.sim.experts import run_expert
from rich.console import Console
from rich.table import Table

from dualctl.data.episode import atomic_write_text
from dualctl.errors import CheckpointError, ConfigError
from dualctl.eval.references import StateAlignment
from dualctl.eval.stats import wilson_interval
from dualctl.tracker.base import Tracker
from dualctl.tracker.checkpoint import with_reader_choices
from dualctl.tracker.ensemble import load_ensemble
from dualctl.tracker.jepa import load_tracker
from dualctl.types import ACTION_FIELDS, GRIPPER_STROKE_M, PROPRIO_FIELDS

RESULTS = Path(__file__).resolve().parent / "results"
#: arm -> (modalities, grip reflex on)
ARMS = {
    "full": (("force", "tactile"), True),
    "no reflex": (("force", "tactile"), False),
    "no force/tactile": ((), False),
}
ABLATED_TASKS = ("Fragile", "Slippery")
#: A commanded finger opening below this (m) is a close (the grip reflex's threshold).
CLOSING_BELOW_M = 0.5 * GRIPPER_STROKE_M
PROPRIO_YAW = PROPRIO_FIELDS.index("ee_yaw")
#: Pad force (N) on both fingers above which the object counts as held (the task monitor's).
HELD_N = 0.5


def interpolate(times: np.ndarray, latents: np.ndarray, t: float) -> np.ndarray:
    """Latent at time ``t`` (s) on the expert's timeline, linear between frames, clamped."""
    i = int(np.searchsorted(times, t))
    if i <= 0:
        return latents[0]
    if i >= len(times):
        return latents[-1]
    w = (t - times[i - 1]) / (times[i] - times[i - 1])
    return ((1 - w) * latents[i - 1] + w * latents[i]).astype(np.float32)


def wrap_quarter_turn(angle: float) -> float:
    """An angle (rad) wrapped to [-pi/4, pi/4): a square block looks the same every quarter
    turn, so a grasp that far off the expert's yaw is as good as the expert's."""
    return float((angle + np.pi / 4) % (np.pi / 2) - np.pi / 4)


def yaw_error(robot_yaw: float | None, expert_yaw: float | None) -> float | None:
    """Robot minus expert grasp yaw (rad), wrapped a quarter turn; None if either never closed."""
    if robot_yaw is None or expert_yaw is None:
        return None
    return wrap_quarter_turn(robot_yaw - expert_yaw)


def expert_grasp_yaw(expert) -> float | None:
    """The expert's gripper yaw (rad) when it first commands a close, None if it never does."""
    closing = np.flatnonzero(expert.action[:, ACTION_FIELDS.index("grip_width")] < CLOSING_BELOW_M)
    return float(expert.proprio[closing[0], PROPRIO_YAW]) if len(closing) else None


@dataclasses.dataclass
class GraspSlide:
    """How far (m) the object has slid down the fingers since they first held it (the task's
    own measure of a drop, which it calls at SLIP_LIMIT): when the grip reflex called it
    carried, and at the episode's end; and the grip force the reflex then held over the
    object's hold force (m g / 2 mu). Privileged sim state, for tracing drops."""

    at_carried_m: float | None = None
    at_end_m: float | None = None
    force_over_hold: float | None = None
    _held_offset: float | None = None

    def update(self, body: SimBody, reflex) -> None:
        state = body.world.state()
        offset = float(state.ee_pose[2] - state.object_pos[2])
        if self._held_offset is None:
            if min(state.pad_force) > HELD_N:
                self._held_offset = offset
            return
        self.at_end_m = offset - self._held_offset
        if self.at_carried_m is None and reflex is not None and reflex.state == "carrying":
            self.at_carried_m = self.at_end_m
            self.force_over_hold = reflex.probe.force / body.variation.hold_force


def _slide_text(run: dict) -> str:
    """The run's slide figures for the log, or "" when the reflex never carried anything."""
    if run["slide_at_carried_m"] is None:
        return ""
    carried, end = 1000 * run["slide_at_carried_m"], 1000 * run["slide_at_end_m"]
    return f" (slid {carried:.0f} / {end:.0f} mm, {run['force_over_hold']:.2f} x hold)"


async def follow(tracker: Tracker, task: str, seed: int, config: SimConfig,
                 expert, latents: np.ndarray, rate_hz: float, align: str,
                 window_s: float = 1.0):  # fmt: skip
    """Run one episode; the final status, the robot's yaw (rad) and its hand's distance from
    the object's centre across the table (m) at its first close (None if it never closes), and
    the :class:`GraspSlide`."""
    clock = [0.0]
    body = SimBody(task, seed, config, now=lambda: clock[0])
    await body.connect()
    tracker.reset()
    latent, image_stamp = None, None
    times = expert.timestamp
    step_s = float(np.median(np.diff(times)))
    alignment = StateAlignment(expert.proprio, step_s, window_s) if align == "state" else None
    grasp_yaw = grasp_offset = None
    slide = GraspSlide()
    try:
        while True:
            obs = await body.observe()
            if body.status().done:
                return body.status(), grasp_yaw, grasp_offset, slide
            stamp = obs.stamps[f"image/{tracker.cameras[0]}"]
            if stamp != image_stamp:
                latent, image_stamp = tracker.encode_view(obs.images), stamp
            now = obs.timestamp if alignment is None else times[alignment.step(obs.proprio)]
            reference = interpolate(times, latents, now + tracker.lookahead_s)
            action = tracker.act(obs, latent, reference)
            if grasp_yaw is None and action.gripper.width_m < CLOSING_BELOW_M:
                grasp_yaw = float(obs.proprio[PROPRIO_YAW])
                state = body.world.state()
                grasp_offset = float(np.hypot(*(state.ee_pose[:2] - state.object_pos[:2])))
            slide.update(body, tracker.grip_reflex)
            await body.act(action)
            clock[0] += 1.0 / rate_hz
    finally:
        await body.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/tracker")
    parser.add_argument("--tasks", default="Lift,Fragile,Slippery,Place")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=4000, help="first seed (0..149 trained)")
    parser.add_argument("--split", default="train", choices=("train", "heldout"))
    parser.add_argument("--arms", default=",".join(ARMS), help="comma-separated subset of arms")
    parser.add_argument("--align", default="state", choices=("state", "clock"))
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--window", type=float, default=1.0,
                        help="--align state looks at most this far (s of the expert's time) past "
                        "its last match; 0 = the whole rest of the rollout")  # fmt: skip
    parser.add_argument("--lookahead", type=float, default=0.0,
                        help="run at this lookahead (s) instead of the checkpoint's; it must lie "
                        "in the range the head was trained for")  # fmt: skip
    parser.add_argument("--ensemble", default="",
                        help="more checkpoints (comma-separated) acting with --checkpoint as one: "
                        "their actions averaged (dualctl.tracker.ensemble)")  # fmt: skip
    parser.add_argument("--grasp-pose", default="",
                        help="the grasp-pose reader whose servo turns the open hand to the "
                        "object's faces: a folder, 'off', or '' for the one the checkpoint "
                        "ships (if any)")  # fmt: skip
    parser.add_argument("--hand-pose", default="",
                        help="the hand-pose reader whose servo carries toward the reference's "
                        "hand: a folder, 'off', or '' for the one the checkpoint ships (if any)")  # fmt: skip
    parser.add_argument("--place-pose", default="",
                        help="the place-pose reader whose servo takes a carry that heads for the "
                        "pad over its centre: a folder, 'off', or '' for the one the checkpoint "
                        "ships (if any)")  # fmt: skip
    parser.add_argument("--heavy-probe-speed", type=float, default=0.0,
                        help="the grip reflex's probing lift (m/s) once the object is heavy "
                        "(tracker.heavy_probe_speed); 0 = the tracker's default")  # fmt: skip
    parser.add_argument("--guarded-descent", default="", choices=("", "on", "off"),
                        help="lower an open hand the head holds still over the object onto it "
                        "and close (tracker.guarded_descent); '' = the tracker's default")  # fmt: skip
    parser.add_argument("--json", default=str(RESULTS / "tracker_oracle.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SimConfig(split=args.split)
    trackers = {}
    for arm in args.arms.split(","):
        if arm not in ARMS:
            parser.error(f"--arms: {arm!r} is not one of {list(ARMS)}")
        modalities, reflex = ARMS[arm]
        try:
            folders = [args.checkpoint, *filter(None, args.ensemble.split(","))]
            choices = with_reader_choices(
                Path(args.checkpoint), args.grasp_pose, args.hand_pose, args.place_pose
            )
            if args.heavy_probe_speed:
                choices = dataclasses.replace(choices, heavy_probe_speed=args.heavy_probe_speed)
            if args.guarded_descent:
                descent = args.guarded_descent == "on"
                choices = dataclasses.replace(choices, guarded_descent=descent)
            trackers[arm] = (
                load_ensemble(folders, modalities, choices, lookahead_s=args.lookahead or None)
                if len(folders) > 1
                else load_tracker(
                    args.checkpoint, modalities, choices, lookahead_s=args.lookahead or None
                )  # fmt: skip
            )
        except (CheckpointError, ConfigError) as error:
            parser.error(str(error))
        trackers[arm].grip_reflex = trackers[arm].grip_reflex if reflex else None
    config = with_cameras(config, next(iter(trackers.values())).cameras)
    outcomes: dict[tuple[str, str], list] = collections.defaultdict(list)
    console = Console()
    started = time.monotonic()
    for task in args.tasks.split(","):
        for seed in range(args.seed, args.seed + args.episodes):
            expert = run_expert(task, seed, args.split, config)
            first = next(iter(trackers.values()))
            latents = first.encode(expert.images[first.cameras[0]])
            expert_yaw = expert_grasp_yaw(expert)
            for arm, tracker in trackers.items():
                if arm != "full" and task not in ABLATED_TASKS:
                    continue
                status, grasp_yaw, grasp_offset, slide = asyncio.run(follow(
                    tracker, task, seed, config, expert, latents, args.rate, args.align,
                    args.window))  # fmt: skip
                outcomes[(task, arm)].append(
                    {
                        "seed": seed,
                        "success": bool(status.success),
                        "failure": status.failure_reason,
                        "expert_success": bool(expert.meta["success"]),
                        "grasp_yaw_error": yaw_error(grasp_yaw, expert_yaw),
                        "grasp_offset_m": grasp_offset,
                        "slide_at_carried_m": slide.at_carried_m,
                        "slide_at_end_m": slide.at_end_m,
                        "force_over_hold": slide.force_over_hold,
                    }
                )
            done = [
                (arm, outcomes[(task, arm)][-1])
                for arm in trackers
                if (task, arm) in outcomes and outcomes[(task, arm)][-1]["seed"] == seed
            ]
            console.log(
                f"{task} seed {seed}: "
                + ", ".join(
                    f"{arm}={r['success']} {r['failure'] or ''}{_slide_text(r)}" for arm, r in done
                )
            )
    table = Table(
        title=f"oracle-reference closed loop, {args.split} split, seeds "
        f"{args.seed}..{args.seed + args.episodes - 1}, act at {args.rate:g} Hz, "
        f"reference aligned by {args.align} (window {args.window:g} s), "
        f"lookahead {next(iter(trackers.values())).lookahead_s:g} s"
    )
    columns = ("task", "arm", "success", "rate", "Wilson 95 %", "expert", "|grasp yaw err|",
               "grasp offset", "failures")  # fmt: skip
    for column in columns:
        table.add_column(column)
    cells = {}
    for (task, arm), runs in outcomes.items():
        wins, n = sum(r["success"] for r in runs), len(runs)
        low, high = wilson_interval(wins, n)
        failures = collections.Counter(r["failure"] for r in runs if not r["success"])
        expert_wins = sum(r["expert_success"] for r in runs)
        yaw_errors = [abs(r["grasp_yaw_error"]) for r in runs if r["grasp_yaw_error"] is not None]
        median_yaw = float(np.median(yaw_errors)) if yaw_errors else None
        offsets = [r["grasp_offset_m"] for r in runs if r["grasp_offset_m"] is not None]
        median_offset = float(np.median(offsets)) if offsets else None
        cells[f"{task}/{arm}"] = {"successes": wins, "episodes": n, "rate": wins / n,
                                  "wilson95": [low, high], "expert_successes": expert_wins,
                                  "median_abs_grasp_yaw_error": median_yaw,
                                  "median_grasp_offset_m": median_offset,
                                  "failures": dict(failures), "runs": runs}  # fmt: skip
        table.add_row(
            task,
            arm,
            f"{wins}/{n}",
            f"{wins / n:.2f}",
            f"[{low:.2f}, {high:.2f}]",
            f"{expert_wins}/{n}",
            "-" if median_yaw is None else f"{median_yaw:.2f} rad",
            "-" if median_offset is None else f"{100 * median_offset:.1f} cm",
            ", ".join(f"{k}:{v}" for k, v in failures.items()),
        )
    console.print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.json), json.dumps({
        "checkpoint": args.checkpoint, "ensemble": args.ensemble,
        "grasp_pose": args.grasp_pose or "(the checkpoint's own)",
        "hand_pose": args.hand_pose or "(the checkpoint's own)",
        "place_pose": args.place_pose or "(the checkpoint's own)", "split": args.split,
        "heavy_probe_speed": args.heavy_probe_speed or "(default)",
        "guarded_descent": args.guarded_descent or "(default)",
        "first_seed": args.seed,
        "rate_hz": args.rate, "align": args.align, "window_s": args.window,
        "lookahead_s": next(iter(trackers.values())).lookahead_s, "seconds": time.monotonic() - started,
        "cells": cells,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
