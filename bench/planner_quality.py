"""Plan quality on held-out episodes: per-horizon PSNR and SSIM of the plan against the real
future, next to the copy-the-current-frame baseline, and whether the end effector moves the
right way in the plan (a small CNN probe, trained on real training frames, reads the end-effector
position off each frame).

    python bench/planner_quality.py [--checkpoint checkpoints/planner] [--heldout data/sim_heldout]
        [--train data/sim] [--per-episode 3] [--limit N] [--steps S] [--guidance G]
        [--sweep guidance=1.0,change_threshold=0.03 ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from planner_common import (
    SmallCNN,
    as_input,
    fit,
    imagine_all,
    load,
    make_clips,
    predict,
    write_result,
)
from rich.console import Console
from rich.table import Table

from dualctl.planner.diffusion_planner import load_planner
from dualctl.planner.metrics import psnr, ssim

#: Only clips whose end effector really moves this far (m) over the horizon count for direction.
MIN_MOTION_M = 0.02


def per_horizon(plans, truth, frame) -> dict[str, list[float]]:
    k = truth.shape[1]
    copy = np.repeat(frame[:, None], k, axis=1)
    return {
        "psnr_plan": [np.mean([psnr(p, g) for p, g in zip(plans[:, i], truth[:, i])]) for i in range(k)],
        "psnr_copy": [np.mean([psnr(c, g) for c, g in zip(copy[:, i], truth[:, i])]) for i in range(k)],
        "ssim_plan": [ssim(plans[:, i], truth[:, i]) for i in range(k)],
        "ssim_copy": [ssim(copy[:, i], truth[:, i]) for i in range(k)],
    }  # fmt: skip


def train_probe(train_dataset: str, camera: str, episodes: int, steps: int):
    """Frame -> normalised end-effector xyz, fit on every 4th frame of the training episodes."""
    data = load(train_dataset, camera, None)
    pick = np.linspace(0, len(data) - 1, min(episodes, len(data))).round().astype(int)
    frames = np.concatenate([data.frames[i][::4] for i in pick])
    xyz = torch.from_numpy(np.concatenate([data.proprio[i][::4, :3] for i in pick]))
    mean, std = xyz.mean(0), xyz.std(0)
    probe = fit(SmallCNN(3, 3), as_input(frames), (xyz - mean) / std, steps, classify=False)

    def read(images: np.ndarray) -> np.ndarray:
        return (predict(probe, as_input(images)) * std + mean).numpy()

    return read


def direction(read, frame, target_frames, true_delta) -> dict[str, float]:
    moved = np.linalg.norm(true_delta, axis=1) >= MIN_MOTION_M
    d = read(target_frames) - read(frame)
    cos = np.sum(d * true_delta, 1) / (
        np.linalg.norm(d, axis=1) * np.linalg.norm(true_delta, axis=1) + 1e-9
    )
    return {
        "clips": int(moved.sum()),
        "mean_cosine": float(cos[moved].mean()),
        "fraction_right_way": float((cos[moved] > 0).mean()),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/planner")
    parser.add_argument("--heldout", default="data/sim_heldout")
    parser.add_argument("--train", default="data/sim")
    parser.add_argument("--per-episode", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="held-out episodes to use")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--guidance", type=float, default=None)
    parser.add_argument("--probe-episodes", type=int, default=200)
    parser.add_argument("--probe-steps", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--name", default="planner_quality")
    parser.add_argument(
        "--sweep", action="append", default=[],
        help="extra setting to score, e.g. guidance=1.0,change_threshold=0.03 (repeatable)",
    )  # fmt: skip
    args = parser.parse_args()
    torch.manual_seed(0)
    planner = load_planner(
        args.checkpoint, steps=args.steps, guidance=args.guidance, threads=args.threads
    )
    cfg = planner.config
    data = load(args.heldout, cfg.camera, args.limit)
    clips = make_clips(data, cfg.horizon, cfg.horizon_s, args.per_episode)
    read = train_probe(args.train, cfg.camera, args.probe_episodes, args.probe_steps)
    console = Console()
    results = {}
    for setting in ["", *args.sweep]:
        changed = apply_setting(planner, setting)
        name = ", ".join(f"{k}={v}" for k, v in changed.items()) or "checkpoint defaults"
        results[name] = evaluate(planner, clips, read)
        report(console, name, results[name], cfg, len(clips.frame), len(data))
        apply_setting(planner, ",".join(f"{k}={v}" for k, v in changed.items()), restore=True)
    path = write_result(args.name, {
        "checkpoint": args.checkpoint, "heldout": args.heldout, "episodes": len(data),
        "clips": len(clips.frame), "defaults": {"steps": cfg.steps, "guidance": cfg.guidance,
        "sampler": cfg.sampler, "change_threshold": cfg.change_threshold}, "settings": results,
    })  # fmt: skip
    console.print(f"wrote {path}")


_saved: dict[str, object] = {}


def apply_setting(planner, setting: str, restore: bool = False) -> dict[str, object]:
    """Set ``key=value,...`` on the planner's config (or restore what was there)."""
    changed = {}
    for item in filter(None, setting.split(",")):
        key, _, text = item.partition("=")
        if restore:
            setattr(planner.config, key, _saved.pop(key))
            continue
        old = getattr(planner.config, key)
        value = type(old)(text) if not isinstance(old, bool) else text.lower() == "true"
        _saved[key] = old
        setattr(planner.config, key, value)
        changed[key] = value
    return changed


def evaluate(planner, clips, read) -> dict:
    cfg = planner.config
    started = time.monotonic()
    plans = imagine_all(planner, clips.frame, clips.proprio, clips.instruction)
    seconds = (time.monotonic() - started) / len(clips.frame)
    scores = per_horizon(plans, clips.future, clips.frame)
    true_delta = clips.future_proprio[:, :, :3] - clips.proprio[:, None, :3]
    motion = {}
    for k in sorted({cfg.horizon // 2 - 1, cfg.horizon - 1}):
        motion[f"k{k + 1}"] = {
            "plan": direction(read, clips.frame, plans[:, k], true_delta[:, k]),
            "true_future_frames": direction(
                read, clips.frame, clips.future[:, k], true_delta[:, k]
            ),
        }
    beats = {
        "psnr_every_step": bool(np.all(np.array(scores["psnr_plan"]) > np.array(scores["psnr_copy"]))),
        "ssim_every_step": bool(np.all(np.array(scores["ssim_plan"]) > np.array(scores["ssim_copy"]))),
    }  # fmt: skip
    return {"per_horizon": scores, "beats_copy": beats, "motion": motion,
            "plan_seconds_per_clip": seconds}  # fmt: skip


def report(console, name: str, result: dict, cfg, clips: int, episodes: int) -> None:
    scores = result["per_horizon"]
    table = Table(title=f"planner quality ({name}): {clips} clips, {episodes} held-out episodes")
    for column in ("k", "ahead s", "PSNR plan", "PSNR copy", "SSIM plan", "SSIM copy"):
        table.add_column(column, justify="right")
    for i in range(cfg.horizon):
        table.add_row(
            str(i + 1), f"{(i + 1) * cfg.horizon_s / cfg.horizon:.2f}",
            f"{scores['psnr_plan'][i]:.2f}", f"{scores['psnr_copy'][i]:.2f}",
            f"{scores['ssim_plan'][i]:.3f}", f"{scores['ssim_copy'][i]:.3f}",
        )  # fmt: skip
    console.print(table)
    motion_table = Table(title=f"end-effector direction (probe), clips moving >= {MIN_MOTION_M} m")
    for column in ("horizon", "source", "clips", "mean cos", "right way"):
        motion_table.add_column(column, justify="right")
    for key, rows in result["motion"].items():
        for source, row in rows.items():
            motion_table.add_row(key, source, str(row["clips"]), f"{row['mean_cosine']:.3f}",
                                 f"{row['fraction_right_way']:.1%}")  # fmt: skip
    console.print(motion_table)
    console.print(f"beats copy baseline: {result['beats_copy']}")


if __name__ == "__main__":
    main()
