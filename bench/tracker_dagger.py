"""One DAgger round for the tracker: roll out a checkpoint in the sim with beta-mixing, and
record every visited state labelled with the touch teacher's action.

Why: cloned from teacher demos alone, the head drifts in closed loop within ~0.3 s (it never
saw the states its own errors lead to). Here, at each camera frame, the touch teacher
(``dualctl.sim.experts.TouchGrip``, the expert arm with a touch-only grip force) is asked for
its action from the visited state (the label); the executed action is the teacher's with
probability ``beta``, else the tracker's (following the oracle reference: the sim expert's
recorded frames for that seed, encoded, ``lookahead_s`` ahead). Episodes are written in the
normal episode format with the labels as ``action``, plus the reference the tracker was shown
at each step as the extra camera ``reference`` (the expert's frame nearest ``t +
lookahead_s``): training conditions the head on that frame, so a label is always paired with
the reference it was given for (the executed trajectory's own future, the hindsight reference
demos use, shows where the tracker went, not where the reference led; with it the labels
"lower and release" met references showing a hover). Demos keep hindsight references.

    MUJOCO_GL=egl python bench/tracker_dagger.py --out data/sim_dagger
        [--checkpoint checkpoints/tracker] [--episodes 40] [--seed 5000] [--beta 0.5]
        [--align clock|state] [--planner checkpoints/planner] [--lookahead S]
        [--teacher script|state] [--grasp-pose|--hand-pose|--place-pose FOLDER|off]

Resumable: episodes already in ``--out`` are kept and counted, not rolled out again (each
episode draws its beta-mixing from its own seed, so a resumed round equals an uninterrupted
one; the shipped rounds drew from one stream over the whole run).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from dualctl.sim.config import SimConfig, with_cameras
from dualctl.sim.experts import (
    Expert,
    StateExpert,
    TouchGrip,
    episode_meta,
    run_expert,
    steps_to_episode,
)
from dualctl.sim.tasks import TASKS, instruction, sample_variation
from dualctl.sim.world import World
from rich.console import Console
from rich.progress import Progress

from dualctl.config import load_config
from dualctl.data.dataset import REFERENCE_CAMERA
from dualctl.data.episode import (
    Episode,
    atomic_write_text,
    read_dataset_info,
    read_episode,
    write_dataset_info,
    write_episode,
)
from dualctl.errors import CheckpointError, ConfigError
from dualctl.eval.references import StateAlignment
from dualctl.planner.diffusion_planner import load_planner
from dualctl.tracker.checkpoint import with_reader_choices
from dualctl.tracker.jepa import JepaTracker, load_tracker
from dualctl.tracker.plan_references import shown_frame
from dualctl.types import Action, Observation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracker_oracle import interpolate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def observe(world: World, images: dict[str, np.ndarray], t: float) -> Observation:
    stamps = {f"image/{name}": t for name in images}
    stamps.update(proprio=t, wrench=t, tactile=t)
    return Observation(t, images, world.proprio(), world.wrench(), world.tactile(), stamps)


class PlannerReferences:
    """References from the diffusion planner, replanned and delayed as the runtime does: a plan
    from the current frame every ``replan_s``, usable ``latency_s`` after it was asked for;
    the reference is the latest usable plan's frame nearest ``t + lookahead`` (the first plan
    before any has arrived)."""

    def __init__(self, planner, instruction: str, replan_s: float = 0.5, latency_s: float = 0.3):
        self.planner, self.instruction = planner, instruction
        self.replan_s, self.latency_s = replan_s, latency_s
        config = planner.config
        self.frame_s = config.horizon_s / config.horizon
        self.conditioned_at: list[float] = []
        self.plans: list[np.ndarray] = []

    def frame(self, observation: Observation, lookahead_s: float) -> np.ndarray:
        t = observation.timestamp
        if not self.plans or t >= self.conditioned_at[-1] + self.replan_s - 1e-9:
            camera = self.planner.config.camera
            frames = self.planner.imagine(observation.images[camera][None],
                                          observation.proprio[None], [self.instruction])[0]  # fmt: skip
            self.conditioned_at.append(t)
            self.plans.append(frames)
        return shown_frame(np.array(self.conditioned_at), self.plans, t, self.frame_s,
                           self.latency_s, lookahead_s)  # fmt: skip


def run_mixed(
    tracker: JepaTracker, task: str, seed: int, config: SimConfig, beta: float,
    rng: np.random.Generator, align: str = "clock", planner=None, arm: str = "script",
) -> Episode:  # fmt: skip
    """One beta-mixed episode at the camera rate; ``action`` holds the teacher's labels. The
    reference is taken ``lookahead_s`` after the expert's time now (``align="clock"``) or
    after the expert step matching the robot's state (``"state"``, as tracker_oracle.py).
    ``arm`` is the touch teacher's arm: the expert's script or the state-read
    :class:`~dualctl.sim.experts.StateExpert`."""
    reference = run_expert(task, seed, config.split, config)
    camera = tracker.cameras[0]
    ref_latents = tracker.encode(reference.images[camera])
    step_s = float(np.median(np.diff(reference.timestamp)))
    alignment = StateAlignment(reference.proprio, step_s) if align == "state" else None
    variation = sample_variation(task, seed, config.split)
    world = World(task, variation, config)
    plans = None if planner is None else PlannerReferences(planner, instruction(task, variation))
    steps: dict[str, list] = collections.defaultdict(list)
    tracker_steps = 0
    try:
        expert = StateExpert(task, world) if arm == "state" else Expert(task, world)
        teacher = TouchGrip(expert, world)
        tracker.reset()
        period, t = 1.0 / config.camera_hz, 0.0
        while True:
            done = world.monitor.status.done
            label = Action.hold(world.state().width) if done else teacher.act()
            images = world.render()
            observation = observe(world, images, t)
            now = t if alignment is None else reference.timestamp[alignment.step(world.proprio())]
            if plans is None:
                shown = reference_frame(reference, now + tracker.lookahead_s, camera)
            else:
                shown = plans.frame(observation, tracker.lookahead_s)
            executed = label
            if not done:
                latent = tracker.encode_view(images)
                if plans is None:
                    target = interpolate(reference.timestamp, ref_latents,
                                         now + tracker.lookahead_s)  # fmt: skip
                else:
                    target = tracker.encode(shown[None])[0]
                own = tracker.act(observation, latent, target)
                if rng.random() >= beta:
                    executed, tracker_steps = own, tracker_steps + 1
            world.apply(executed)
            steps["images"].append({**images, REFERENCE_CAMERA: shown})
            for key in ("proprio", "wrench", "tactile"):
                steps[key].append(getattr(observation, key))
            steps["action"].append(label.to_array())
            steps["timestamp"].append(t)
            if done:
                break
            t += period
            world.advance_to(t)
    finally:
        world.close()
    meta = episode_meta(world, seed, config.split, config, teacher="touch_grip",
                        teacher_arm=arm, dagger_beta=beta, tracker_steps=tracker_steps,
                        reference_camera=camera)  # fmt: skip
    return steps_to_episode(steps, (*world.cameras, REFERENCE_CAMERA), meta)


def reference_frame(expert: Episode, t: float, camera: str = "scene") -> np.ndarray:
    """The expert's ``camera`` frame nearest time ``t`` (s), held at its last frame."""
    i = int(np.abs(np.asarray(expert.timestamp) - t).argmin())
    return expert.images[camera][i]


def link_demos(out: Path, demos: Path) -> int:
    """Aggregate: symlink the demo episodes into ``out/episodes`` (relative links). Safe to run
    from two processes at once (one per task group, as the recipes do): a link the other made
    first is kept."""
    count = 0
    for path in sorted((demos / "episodes").glob("*.npz")):
        link = out / "episodes" / f"demo_{path.name}"
        if not link.is_symlink():
            # The other process may link it between the check and here.
            with contextlib.suppress(FileExistsError):
                link.symlink_to(os.path.relpath(path.resolve(), link.parent.resolve()))
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="data/sim_dagger")
    parser.add_argument("--checkpoint", default="checkpoints/tracker")
    parser.add_argument("--demos", default="data/sim_touch", help="demo dataset to aggregate")
    parser.add_argument("--tasks", default="Lift,Fragile,Slippery,Place")
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--beta", type=float, default=0.5)
    parser.add_argument(
        "--align",
        default="clock",
        choices=("clock", "state"),
        help="how the reference is timed (clock: as the shipped rounds were)",
    )
    parser.add_argument(
        "--planner", default="",
        help="a planner checkpoint: show its plans (replanned every 0.5 s, 0.3 s late, as the "
        "runtime does) instead of the expert's frames",
    )  # fmt: skip
    parser.add_argument(
        "--composite", default=load_config().planner.composite,
        help="how the plans are painted (default: the runtime's planner.composite)",
    )  # fmt: skip
    parser.add_argument(
        "--teacher", default="script", choices=("script", "state"),
        help="the touch teacher's arm: the expert's script (as the shipped rounds were) or "
        "the expert reading its phase from the state (StateExpert: labels that do not depend "
        "on how the robot got there)",
    )  # fmt: skip
    parser.add_argument("--lookahead", type=float, default=0.0,
                        help="roll out at this lookahead (s) instead of the checkpoint's (within "
                        "the range its head was trained for); the references shown and "
                        "recorded follow it")  # fmt: skip
    parser.add_argument("--grasp-pose", default="",
                        help="the grasp-pose reader turning the open hand during rollouts: a "
                        "folder, 'off', or '' for the one the checkpoint ships (if any)")  # fmt: skip
    parser.add_argument("--hand-pose", default="",
                        help="the hand-pose reader whose servo carries toward the reference's "
                        "hand: a folder, 'off', or '' for the one the checkpoint ships (if any)")  # fmt: skip
    parser.add_argument("--place-pose", default="",
                        help="the place-pose reader whose servo takes a carry over the pad: a "
                        "folder, 'off', or '' for the one the checkpoint ships (if any)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(1)
    planner = (
        load_planner(args.planner, threads=1, composite=args.composite) if args.planner else None
    )
    config = SimConfig(split="train")
    out, tasks = Path(args.out), args.tasks.split(",")
    try:
        choices = with_reader_choices(
            Path(args.checkpoint), args.grasp_pose, args.hand_pose, args.place_pose
        )
        tracker = load_tracker(args.checkpoint, config=choices, lookahead_s=args.lookahead or None)
    except (CheckpointError, ConfigError) as error:
        parser.error(str(error))
    if planner is not None and planner.config.camera != tracker.cameras[0]:
        parser.error(f"--planner {args.planner} imagines camera '{planner.config.camera}', "
                     f"the tracker reads '{tracker.cameras[0]}': pick a pair of one camera")  # fmt: skip
    config = with_cameras(config, tracker.cameras)
    if (out / "dataset.json").is_file():  # another process or an earlier round of this folder
        recorded = read_dataset_info(out).get("tasks", [])
        tasks_in_folder = sorted(set(recorded) | set(tasks), key=TASKS.index)
    else:
        tasks_in_folder = tasks
    write_dataset_info(out, {
        "source": f"bench/tracker_dagger.py (beta={args.beta}, align={args.align}, "
        f"teacher={args.teacher}, "
        f"{f'planner {args.planner}, ' if args.planner else ''}"
        f"tracker {args.checkpoint} at lookahead {tracker.lookahead_s:g} s, "
        f"seeds {args.seed}+) + {args.demos}",
        "cameras": {name: [config.camera_size] * 2 for name in (*config.cameras, REFERENCE_CAMERA)},
        "camera_hz": config.camera_hz,
        "physics_hz": config.physics_hz, "split": config.split, "tasks": tasks_in_folder,
    })  # fmt: skip
    (out / "episodes").mkdir(parents=True, exist_ok=True)
    demos = link_demos(out, Path(args.demos))
    outcomes = collections.defaultdict(collections.Counter)
    with Progress() as progress:
        for task in tasks:
            bar = progress.add_task(f"DAgger {task}", total=args.episodes)
            for seed in range(args.seed, args.seed + args.episodes):
                path = out / "episodes" / f"dagger_{task.lower()}_{seed:06d}.npz"
                if path.is_file():  # resuming: written (atomically) by an earlier run
                    episode = read_episode(path)
                else:
                    rng = np.random.default_rng([seed, tasks.index(task)])
                    episode = run_mixed(tracker, task, seed, config, args.beta, rng, args.align,
                                        planner, args.teacher)  # fmt: skip
                    write_episode(path, episode)
                outcomes[task][episode.meta["failure_reason"] or "success"] += 1
                progress.update(bar, advance=1)
    result = {task: dict(counts) for task, counts in outcomes.items()}
    Console().print(f"{demos} demo episodes linked; mixed-rollout outcomes: {result}")
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "tracker_dagger.json", json.dumps(
        {"out": str(out), "first_seed": args.seed, "beta": args.beta,
         "checkpoint": args.checkpoint, "outcomes": result}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
