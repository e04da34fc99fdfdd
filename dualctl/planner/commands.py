"""``dualctl train planner`` and ``dualctl plan``; torch and Lightning load only when one runs
(``dualctl --help`` stays fast)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dualctl.cli import CommandRegistry, add_overrides
from dualctl.config import load_config
from dualctl.data.episode import read_episode
from dualctl.errors import DataError
from dualctl.types import Observation


def register(registry: CommandRegistry) -> None:
    train = registry.add_train(
        "planner",
        "train the video-diffusion planner (autoencoder, then latent diffusion)",
        run_train,
    )
    train.add_argument(
        "--export", type=Path, default=None,
        help="checkpoint folder to write (default <out>/planner/checkpoint)",
    )  # fmt: skip
    train.add_argument("--limit-episodes", type=int, default=None, help="use the first N only")
    add_overrides(train)

    plan = registry.add(
        "plan", "imagine a plan for one recorded step; write a strip + gif", run_plan
    )
    plan.add_argument("--episode", type=Path, required=True, help="a dataset episode .npz")
    plan.add_argument("--t", type=int, default=0, help="step to plan from (default 0)")
    plan.add_argument(
        "--instruction", action="append", default=None,
        help="plan with this instruction instead of the episode's; repeat it to compare "
        "instructions (one row each in the strip)",
    )  # fmt: skip
    add_overrides(plan)


def run_train(args: argparse.Namespace) -> int:
    from dualctl.planner.train import train_planner  # Lightning is slow to import

    config = load_config(args.overrides)
    run_dir = Path(config.out) / "planner"
    export = args.export if args.export is not None else run_dir / "checkpoint"
    result = train_planner(
        Path(config.data), run_dir, export, config.planner, config.trainer, config.seed,
        limit_episodes=args.limit_episodes,
    )  # fmt: skip
    print(
        f"planner checkpoint: {result.checkpoint} ({result.episodes} episodes, "
        f"{result.clips} clips, {result.seconds / 60:.1f} min)"
    )
    return 0


def observation_at(episode, t: int, camera: str) -> Observation:
    """The observation a body would have produced at recorded step ``t``."""
    return Observation(
        timestamp=float(episode.timestamp[t]),
        images={camera: episode.images[camera][t]},
        proprio=episode.proprio[t],
        wrench=episode.wrench[t],
        tactile=episode.tactile[t],
    )


def run_plan(args: argparse.Namespace) -> int:
    from dualctl.planner.clips import frame_stride, future_indices
    from dualctl.planner.diffusion_planner import load_planner, resolve_checkpoint
    from dualctl.planner.metrics import psnr
    from dualctl.planner.strip import gif_frames, strip_image, write_gif, write_png

    config = load_config(args.overrides)
    cfg = config.planner
    planner = load_planner(resolve_checkpoint(cfg.checkpoint), cfg.steps, cfg.guidance, cfg.seed)
    episode = read_episode(args.episode)
    if not 0 <= args.t < len(episode):
        raise DataError(f"--t {args.t} is outside episode {args.episode} (0..{len(episode) - 1})")
    if planner.config.camera not in episode.images:
        raise DataError(f"{args.episode} has no '{planner.config.camera}' camera images")
    instructions = args.instruction or [str(episode.meta.get("instruction", ""))]
    observation = observation_at(episode, args.t, planner.config.camera)
    plans = [planner.plan(observation, instruction) for instruction in instructions]

    frames = episode.images[planner.config.camera]
    horizon = plans[0].horizon
    stride = frame_stride(horizon, cfg.horizon_s, float(np.median(np.diff(episode.timestamp))))
    truth = frames[future_indices(args.t, len(frames), horizon, stride)]
    out = Path(config.out)
    stem = f"plan_{args.episode.stem}_t{args.t}"
    plan_frames = [plan.frames for plan in plans]
    write_png(out / f"{stem}.png", strip_image(frames[args.t], plan_frames, truth))
    gif = gif_frames(frames[args.t], plan_frames, truth)
    write_gif(out / f"{stem}.gif", gif, cfg.horizon_s / horizon)
    print("horizon s   " + " ".join(f"{t - plans[0].conditioned_at:6.2f}" for t in plans[0].times))
    for row, plan in enumerate(plans, 1):
        print(f"row {row}: {plan.instruction!r}")
        print("PSNR plan   " + " ".join(f"{psnr(p, g):6.1f}" for p, g in zip(plan.frames, truth)))
    print("PSNR copy   " + " ".join(f"{psnr(frames[args.t], g):6.1f}" for g in truth))
    print(f"wrote {out / stem}.png and .gif")
    return 0
