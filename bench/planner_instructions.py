"""Instruction following: from the same held-out start frames, plans made with different task
instructions should show different futures. A small classifier, trained on REAL training clips
to tell the task from the motion alone (future frames minus the current frame), labels each plan;
we count how often it names the instruction the plan was made with.

Lift, Fragile and Slippery differ in grip force, not in motion, so they are told apart poorly even
from real futures; the table therefore also scores the two motion classes ("lift and hold" vs
"carry to the pad", i.e. Place), and the classifier's accuracy on real held-out futures is the
ceiling for both.

That classifier asks whether a plan looks like its task's real future. Whether the instructions
give plans that can be told apart at all is asked by a second classifier, trained on plans
(``--plan-starts`` training start frames, each planned with all four instructions, labelled by
instruction) and scored on the held-out plans; since every held-out start frame is planned with
every instruction, the scene cannot give the instruction away. Per pair of instructions, the
table then scores a two-alternative choice: the share of start frames whose two plans (one per
instruction) that classifier's log-odds order right (chance 50 %), and how far apart the two
plans are as a share of how far the plans move from the start frame, in pixels and in the
tracker's latent (``--tracker``, what System 1 follows).

    python bench/planner_instructions.py [--checkpoint checkpoints/planner]
        [--heldout data/sim_heldout] [--train data/sim] [--limit 40] [--pad-scenes]
        [--guidance G] [--composite add|blend] [--tracker checkpoints/tracker] [--name NAME]

In the plain data the green pad is in the scene exactly when the task is Place, so the scene
gives the lift/place choice away. ``--pad-scenes`` keeps only start frames whose scene shows the
pad (Place, and episodes collected with ``sim.distractor_pad=true``), where both "lift" and
"place" are possible and only the instruction can choose:

    python bench/planner_instructions.py --heldout data/sim_heldout,data/sim_heldout_pad \
        --train data/sim_instr --pad-scenes
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np
import torch
from dualctl.sim.tasks import INSTRUCTIONS, TASKS
from planner_common import SmallCNN, fit, imagine_all, load, make_clips, predict, write_result
from rich.console import Console
from rich.table import Table

from dualctl.data.episode import episode_paths, read_episode
from dualctl.planner.diffusion_planner import load_planner
from dualctl.tracker.jepa import load_tracker

#: Future frames the classifier looks at (1-based horizon steps).
LOOK_AT = (2, 4, 6, 8)


def motion_input(frame: np.ndarray, future: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) and (N, K, H, W, 3) uint8 -> (N, 3 * len(LOOK_AT), H, W) frame differences."""
    now = torch.from_numpy(frame).float()[:, None] / 255.0
    later = torch.from_numpy(future[:, [k - 1 for k in LOOK_AT]]).float() / 255.0
    diff = (later - now).movedim(-1, -3)
    return diff.reshape(diff.shape[0], -1, *diff.shape[-2:])


def colour_of(instruction: str) -> str:
    for template in INSTRUCTIONS.values():
        match = re.fullmatch(template.replace("{colour}", "(\\w+)"), instruction)
        if match:
            return match.group(1)
    raise ValueError(f"instruction {instruction!r} matches no task template")


def motion_class(task: str) -> int:
    return int(task == "Place")


def imagine_with(planner, clips, task: str) -> np.ndarray:
    """Plans from every clip's start frame with ``task``'s instruction (the clip's colour)."""
    instructions = [INSTRUCTIONS[task].format(colour=colour_of(i)) for i in clips.instruction]
    return imagine_all(planner, clips.frame, clips.proprio, instructions)


def told_apart(planner, train, held_out: dict, args) -> dict[str, torch.Tensor]:
    """Whether the plans themselves tell the instructions apart: a classifier trained on
    plans from training start frames (with ``--pad-scenes`` only those whose scene shows the
    pad), labelled with the instruction each was made with, scores each held-out plan (all four
    from the same start frame, so the scene cannot give it away); ``held_out`` maps each
    instruction's task to its plans' classifier inputs. Returns the classifier's logits of
    each instruction's held-out plans."""
    candidates = np.arange(len(train.frame))
    if args.pad_scenes:
        candidates = candidates[pad_in_scene(args.train)[np.asarray(train.episode)]]
    spread = np.linspace(0, len(candidates) - 1, min(args.plan_starts, len(candidates)))
    pick = candidates[np.unique(spread.round().astype(int))]
    starts = subset(train, pick)
    inputs = torch.cat([motion_input(starts.frame, imagine_with(planner, starts, task))
                        for task in TASKS])  # fmt: skip
    labels = torch.arange(len(TASKS)).repeat_interleave(len(pick))
    torch.manual_seed(1)  # its initial weights, whatever ran before
    classifier = fit(SmallCNN(3 * len(LOOK_AT), len(TASKS)), inputs, labels,
                     args.classifier_steps, classify=True, seed=1)  # fmt: skip
    return {task: predict(classifier, held_out[task]) for task in TASKS}


def pixel_features(frames: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, H * W * 3) float in [0, 1]."""
    return frames.reshape(len(frames), -1).astype(np.float32) / 255.0


def pair_separation(frame: np.ndarray, plans: dict[str, np.ndarray], features) -> dict[str, float]:
    """Per pair of instructions (a, b): how far apart the two plans from one start frame are,
    as a share of how far the plans move from that frame (mean L2 distance over start frames
    and horizon steps, in ``features``: (N, H, W, 3) uint8 -> (N, D) float)."""
    n, k = plans[TASKS[0]].shape[:2]
    now = features(frame)[:, None]
    embedded = {t: features(p.reshape(n * k, *p.shape[2:])).reshape(n, k, -1)
                for t, p in plans.items()}  # fmt: skip
    motion = np.mean([np.linalg.norm(e - now, axis=-1).mean() for e in embedded.values()])
    return {f"{a}/{b}": float(np.linalg.norm(embedded[a] - embedded[b], axis=-1).mean() / motion)
            for i, a in enumerate(TASKS) for b in TASKS[i + 1 :]}  # fmt: skip


def named_right(logits: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per instruction: the share of its held-out plans the plan classifier names right."""
    return {task: float((logits[task].argmax(1) == TASKS.index(task)).float().mean())
            for task in TASKS}  # fmt: skip


def pairs_told_apart(logits: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per pair of instructions (a, b): the share of start frames whose two plans the plan
    classifier orders right, i.e. its log-odds of a over b is higher for the plan made with a
    than for the plan made with b (a two-alternative forced choice: chance 50 %, ties half)."""
    result = {}
    for i, a in enumerate(TASKS):
        for b in TASKS[i + 1 :]:
            ia, ib = TASKS.index(a), TASKS.index(b)
            odds_a, odds_b = (logits[x][:, ia] - logits[x][:, ib] for x in (a, b))
            result[f"{a}/{b}"] = float(
                ((odds_a > odds_b).float() + 0.5 * (odds_a == odds_b).float()).mean()
            )
    return result


def subset(clips, index: np.ndarray):
    """The clips at ``index`` (the arrays and lists each clip has one entry in)."""
    return dataclasses.replace(
        clips, **{name: ([value[i] for i in index] if isinstance(value, list) else value[index])
                  for name, value in vars(clips).items()},
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/planner")
    parser.add_argument("--heldout", default="data/sim_heldout")
    parser.add_argument("--train", default="data/sim")
    parser.add_argument("--limit", type=int, default=40, help="held-out episodes")
    parser.add_argument("--per-episode", type=int, default=3)
    parser.add_argument("--classifier-steps", type=int, default=1500)
    parser.add_argument("--pad-scenes", action="store_true", help="only scenes with the pad")
    parser.add_argument("--guidance", type=float, default=None, help="default: the checkpoint's")
    parser.add_argument("--composite", default=None, help="default: the checkpoint's")
    parser.add_argument(
        "--tracker",
        default="checkpoints/tracker",
        help="whose encoder measures how far apart plans are ('' to skip)",
    )
    parser.add_argument("--name", default=None, help="result file name (bench/results/<name>.json)")
    parser.add_argument(
        "--plan-starts",
        type=int,
        default=400,
        help="training start frames the plan classifier learns from (0: skip)",
    )
    args = parser.parse_args()
    torch.manual_seed(0)
    planner = load_planner(
        args.checkpoint, threads=1, guidance=args.guidance, composite=args.composite
    )
    cfg = planner.config

    train = make_clips(load(args.train, cfg.camera, None), cfg.horizon, cfg.horizon_s, 6)
    labels = torch.tensor([TASKS.index(t) for t in train.task])
    classifier = fit(SmallCNN(3 * len(LOOK_AT), len(TASKS)),
                     motion_input(train.frame, train.future), labels, args.classifier_steps,
                     classify=True)  # fmt: skip

    data = load(args.heldout, cfg.camera, None)
    candidates = np.arange(len(data))
    if args.pad_scenes:
        candidates = candidates[pad_in_scene(args.heldout)]
    picks = np.linspace(0, len(candidates) - 1, min(args.limit, len(candidates))).round()
    keep = candidates[picks.astype(int)]
    for name in ("frames", "proprio", "instructions", "tasks", "names"):
        setattr(data, name, [getattr(data, name)[i] for i in keep])
    clips = make_clips(data, cfg.horizon, cfg.horizon_s, args.per_episode)
    real = predict(classifier, motion_input(clips.frame, clips.future)).argmax(1).numpy()
    true_task = np.array([TASKS.index(t) for t in clips.task])

    swapped, plan_inputs, plans = {}, {}, {}
    for task in TASKS:
        plans[task] = imagine_with(planner, clips, task)
        plan_inputs[task] = motion_input(clips.frame, plans[task])
        swapped[task] = predict(classifier, plan_inputs[task]).argmax(1).numpy()
    separation = {"pixels": pair_separation(clips.frame, plans, pixel_features)}
    if args.tracker:
        tracker = load_tracker(args.tracker)
        separation["tracker_latent"] = pair_separation(clips.frame, plans, tracker.encode_scene)
    logits = told_apart(planner, train, plan_inputs, args) if args.plan_starts else {}
    told, pairs = (named_right(logits), pairs_told_apart(logits)) if logits else ({}, {})

    def rates(pred, target):
        return {"task": float((pred == target).mean()),
                "motion": float((np.vectorize(lambda i: motion_class(TASKS[i]))(pred)
                                 == np.vectorize(lambda i: motion_class(TASKS[i]))(target)).mean())}  # fmt: skip

    result = {"real_future": rates(real, true_task)}
    for task in TASKS:
        result[f"plan_with_{task}"] = rates(
            swapped[task], np.full(len(true_task), TASKS.index(task))
        )
    differ = float(
        (motion_class_array(swapped["Place"]) != motion_class_array(swapped["Lift"])).mean()
    )
    confusion = {
        task: {other: float((swapped[task] == TASKS.index(other)).mean()) for other in TASKS}
        for task in TASKS
    }

    console = Console()
    table = Table(title=f"instruction following: {len(true_task)} start frames, "
                        f"{len(data.frames)} held-out episodes, every instruction on each")  # fmt: skip
    for column in ("frames classified", "task acc", "lift/place acc"):
        table.add_column(column, justify="right")
    for name, row in result.items():
        table.add_row(name, f"{row['task']:.1%}", f"{row['motion']:.1%}")
    console.print(table)
    console.print(f"chance: task {1 / len(TASKS):.0%}, lift/place 50%; "
                  f"Lift vs Place instruction gives a different motion class on {differ:.1%} "
                  "of start frames")  # fmt: skip
    console.print({"predicted task share per instruction": confusion})
    if told:
        console.print(f"a classifier trained on plans ({len(TASKS)} instructions x "
                      f"{args.plan_starts} training start frames) names the instruction of "
                      f"held-out plans: " + ", ".join(f"{t} {v:.1%}" for t, v in told.items())
                      + f"; mean {np.mean(list(told.values())):.1%} (chance 25%)")  # fmt: skip
        pair_table = Table(title="pairs told apart: the two plans from one start frame ordered "
                                 "right by the plan classifier (chance 50%)")  # fmt: skip
        pair_table.add_column("instructions")
        pair_table.add_column("told apart", justify="right")
        for space in separation:
            pair_table.add_column(f"apart / motion, {space}", justify="right")
        for pair, share in pairs.items():
            pair_table.add_row(pair, f"{share:.1%}",
                               *(f"{by_pair[pair]:.1%}" for by_pair in separation.values()))  # fmt: skip
        console.print(pair_table)
    name = args.name or "planner_instructions" + ("_pad_scenes" if args.pad_scenes else "")
    path = write_result(name, {
        "checkpoint": args.checkpoint, "guidance": cfg.guidance, "composite": cfg.composite,
        "heldout": args.heldout, "train": args.train, "start_frames": len(true_task),
        "accuracy": result,
        "lift_vs_place_differ": differ, "confusion": confusion, "look_at": LOOK_AT,
        "plan_classifier": {"train_start_frames": args.plan_starts, "named_right": told,
                            "pairs_told_apart": pairs},
        "separation_over_motion": separation, "tracker": args.tracker,
    })  # fmt: skip
    console.print(f"wrote {path}")


def pad_in_scene(datasets: str) -> np.ndarray:
    """Per episode of ``datasets`` (in :func:`load`'s order): does its scene show the pad?"""
    paths = [p for d in datasets.split(",") for p in episode_paths(Path(d.strip()))]
    return np.array([read_episode(p).meta["variation"].get("pad_xy") is not None for p in paths])


def motion_class_array(pred: np.ndarray) -> np.ndarray:
    return np.array([motion_class(TASKS[i]) for i in pred])


if __name__ == "__main__":
    main()
