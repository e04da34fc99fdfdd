"""Tracker cost on one CPU core: the fast path (``act``) per tick, p50/p99, and the visual
encode per 64x64 frame; latent MPC per call for comparison. Each call is timed in wall time and
in this thread's CPU time: on a shared machine the wall-time tail is the OS scheduler
preempting us, the CPU-time tail is what the code itself costs.

    python bench/tracker_latency.py [--checkpoint checkpoints/tracker] [--ticks 20000]
        [--hand-pose DIR|off] [--ensemble DIR,... [--lookahead S]]

The tracker runs with the readers its checkpoint ships (``--hand-pose off`` times it without
the hand-pose reader, as the runtime runs it by default).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from dualctl.data.episode import atomic_write_text
from dualctl.tracker.checkpoint import read_checkpoint_config, with_reader_choices
from dualctl.tracker.config import TrackerConfig
from dualctl.tracker.descent import GuardedDescent
from dualctl.tracker.ensemble import load_ensemble
from dualctl.tracker.grip import GripReflex
from dualctl.tracker.hand_pose import CarryServo
from dualctl.tracker.jepa import load_tracker
from dualctl.types import GRIPPER_STROKE_M, TACTILE_SHAPE, Action, GripperCommand, Observation

RESULTS = Path(__file__).resolve().parent / "results"


def observation(rng, t: float) -> Observation:
    return Observation(
        timestamp=t, images={}, proprio=rng.normal(size=10).astype(np.float32),
        wrench=rng.normal(size=6).astype(np.float32),
        tactile=rng.normal(size=TACTILE_SHAPE).astype(np.float32),
        stamps={"wrench": t, "tactile": t, "proprio": t},
    )  # fmt: skip


def percentiles_ms(samples: list[tuple[float, float]]) -> dict[str, float]:
    wall, cpu = (np.asarray(x) * 1e3 for x in zip(*samples))
    return {"p50": float(np.percentile(wall, 50)), "p99": float(np.percentile(wall, 99)),
            "max": float(wall.max()), "cpu_p50": float(np.percentile(cpu, 50)),
            "cpu_p99": float(np.percentile(cpu, 99)), "n": len(wall)}  # fmt: skip


def timed(call) -> tuple[float, float]:
    """(wall s, thread CPU s) of one call."""
    wall, cpu = time.perf_counter(), time.thread_time()
    call()
    return time.perf_counter() - wall, time.thread_time() - cpu


def time_act(tracker, ticks: int, rng) -> list[float]:
    z = rng.normal(size=tracker.latent_dim).astype(np.float32)
    # a reference as ``encode`` returns it: the scene latent, then any hand-pose reading (m)
    ref = np.concatenate(
        [
            rng.normal(size=tracker.latent_dim),
            [0.02, -0.01, 0.1][: tracker.reference_dim - tracker.latent_dim],
        ]
    )
    ref = ref.astype(np.float32)
    observations = [observation(rng, i * 0.005) for i in range(256)]
    for obs in observations[:50]:
        tracker.act(obs, z, ref)
    out: list[tuple[float, float]] = []
    for i in range(ticks):
        # Time moves on (the grip reflex keeps a short touch history by time).
        t = 0.25 + i * 0.005
        stamps = {"wrench": t, "tactile": t, "proprio": t}
        obs = dataclasses.replace(observations[i % len(observations)], timestamp=t, stamps=stamps)
        out.append(timed(partial(tracker.act, obs, z, ref)))
    return out


def time_reflex(ticks: int, rng) -> list[float]:
    """The reflex on a closing command every tick (the head's action alone is in ``act``)."""
    reflex = GripReflex(period_s=0.05)
    closing = Action(np.zeros(4, np.float32), GripperCommand(0.0, 0.05, 50.0))
    touches = np.abs(rng.normal(2.0, 0.5, size=(256, *TACTILE_SHAPE))).astype(np.float32)
    return [timed(partial(reflex, closing, touches[i % 256], i * 0.005)) for i in range(ticks)]


def time_carry_servo(ticks: int, rng) -> list[float]:
    """The carry servo alone, engaged (while carrying it runs after the head each tick)."""
    servo = CarryServo(gain=4.0, max_speed=0.1, max_accel=1.0)
    head = Action(np.zeros(4, np.float32), GripperCommand(0.0, 0.05, 50.0))
    observations = [observation(rng, i * 0.005) for i in range(256)]
    goal = np.array([0.1, 0.0, 0.15])
    return [timed(partial(servo, head, observations[i % 256], goal, 0.03)) for i in range(ticks)]


def time_descent(ticks: int, rng) -> list[float]:
    """The guarded descent alone, lowering the hand (its costliest phase)."""
    descent = GuardedDescent()
    head = Action(np.zeros(4, np.float32), GripperCommand(GRIPPER_STROKE_M, 0.05, 50.0))
    observations = [observation(rng, i * 0.005) for i in range(256)]
    out = []
    for i in range(ticks):
        descent.phase = "descending"  # the random touch stops it every tick: start again
        out.append(timed(partial(descent, head, observations[i % 256], None, "open")))
    return out


def time_encode(tracker, frames: int, size: int, rng) -> list[float]:
    images = rng.integers(0, 255, (16, 1, size, size, 3), dtype=np.uint8)
    for image in images[:5]:
        tracker.encode(image)
    out = []
    for i in range(frames):
        out.append(timed(partial(tracker.encode, images[i % 16])))
    return out


def time_encode_view(tracker, frames: int, size: int, rng) -> list[float]:
    """A new camera frame as the runtime hands it over (with the grasp-pose reader, if any)."""
    images = rng.integers(0, 255, (16, size, size, 3), dtype=np.uint8)
    views = [{camera: image for camera in tracker.cameras} for image in images]
    for view in views[:5]:
        tracker.encode_view(view)
    return [timed(partial(tracker.encode_view, views[i % 16])) for i in range(frames)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/tracker")
    parser.add_argument("--ticks", type=int, default=20000)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument(
        "--ensemble",
        default="",
        help="also time the ensemble of --checkpoint and these (comma-separated)",
    )
    parser.add_argument(
        "--lookahead",
        type=float,
        default=0.0,
        help="the ensemble's lookahead (s), when its members differ",
    )
    parser.add_argument("--hand-pose", default="",
                        help="the hand-pose reader: a folder, 'off', or '' for the one the "
                        "checkpoint ships (if any)")  # fmt: skip
    parser.add_argument("--json", default=str(RESULTS / "tracker_latency.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    tracker = load_tracker(
        args.checkpoint, config=with_reader_choices(Path(args.checkpoint), "", args.hand_pose)
    )
    size = tracker.config.image_size
    rows = {
        "act (head, numpy fast path)": percentiles_ms(time_act(tracker, args.ticks, rng)),
        f"encode (a {size}x{size} plan frame, "
        f"{'with' if tracker.hand_pose_reader is not None else 'no'} hand-pose reader)": percentiles_ms(
            time_encode(tracker, args.frames, size, rng)
        ),  # fmt: skip
    }
    reader = "with" if tracker.grasp_pose_reader is not None else "no"
    rows[f"encode_view (a new frame, {reader} grasp-pose reader)"] = percentiles_ms(
        time_encode_view(tracker, args.frames, size, rng)
    )
    rows["grip reflex alone, gripper closing"] = percentiles_ms(time_reflex(args.ticks, rng))
    rows["carry servo alone, engaged"] = percentiles_ms(time_carry_servo(args.ticks, rng))
    rows["guarded descent alone, lowering"] = percentiles_ms(time_descent(args.ticks, rng))
    dropped = load_tracker(args.checkpoint, modalities=())
    rows["act (force+tactile dropped)"] = percentiles_ms(time_act(dropped, args.ticks, rng))
    saved = read_checkpoint_config(Path(args.checkpoint))
    mpc = load_tracker(args.checkpoint, config=TrackerConfig(
        **{**vars(saved), "controller": "mpc"}))  # fmt: skip
    rows["act (latent MPC, CEM)"] = percentiles_ms(time_act(mpc, 200, rng))
    if args.ensemble:
        folders = [args.checkpoint, *args.ensemble.split(",")]
        ensemble = load_ensemble(folders, lookahead_s=args.lookahead or None)
        name = f"ensemble of {len(folders)}"
        rows[f"act ({name})"] = percentiles_ms(time_act(ensemble, args.ticks, rng))
        rows[f"encode ({name})"] = percentiles_ms(time_encode(ensemble, args.frames, size, rng))
    table = Table(title="tracker latency, 1 thread (ms)")
    for column in ("path", "wall p50", "wall p99", "wall max", "cpu p50", "cpu p99", "n"):
        table.add_column(column, justify="right")
    for name, r in rows.items():
        table.add_row(name, *(f"{r[k]:.4f}" for k in ("p50", "p99", "max", "cpu_p50",
                                                        "cpu_p99")), str(r["n"]))  # fmt: skip
    Console().print(table)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.json), json.dumps(
        {"checkpoint": args.checkpoint, "ensemble": args.ensemble, "threads": 1, "ms": rows},
        indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
