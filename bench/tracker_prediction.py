"""World-model quality on held-out episodes: the predictor's 1..4-step latent error against
copying the last latent, and the per-dimension latent std (collapse shows as std ~ 0).

    python bench/tracker_prediction.py [--checkpoint checkpoints/tracker]
        [--data data/sim_heldout] [--windows 2000] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import atomic_write_text
from dualctl.tracker.checkpoint import load_checkpoint
from dualctl.tracker.evaluate import prediction_errors

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="checkpoints/tracker")
    parser.add_argument("--data", default="data/sim_heldout")
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--horizon", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net, config = load_checkpoint(Path(args.checkpoint))
    store = EpisodeStore.load(Path(args.data), camera=config.camera)
    report = prediction_errors(net, store, args.horizon, max_windows=args.windows)
    table = Table(title=f"latent prediction error (mean L1 per dim), {report.windows} windows")
    for column in ("steps ahead", "predictor", "copy last", "predictor / copy",
                   "predictor from online latent"):  # fmt: skip
        table.add_column(column, justify="right")
    for k in report.predictor:
        p, c, o = report.predictor[k], report.copy_last[k], report.from_online[k]
        table.add_row(str(k), f"{p:.4f}", f"{c:.4f}", f"{p / c:.2f}", f"{o:.4f}")
    console = Console()
    console.print(table)
    std = report.latent_std
    console.print(f"latent std per dim: min {std.min():.3f}  median {np.median(std):.3f}  "
                  f"max {std.max():.3f}  dims < 0.01: {(std < 0.01).sum()}/{len(std)}")  # fmt: skip
    result = {
        "checkpoint": args.checkpoint, "data": args.data, "windows": report.windows,
        "episodes": len(store),
        "predictor_l1": report.predictor, "copy_last_l1": report.copy_last,
        "predictor_from_online_l1": report.from_online,
        "latent_std": {"min": float(std.min()), "median": float(np.median(std)),
                       "max": float(std.max()), "per_dim": std.round(4).tolist()},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    atomic_write_text(RESULTS / "tracker_prediction.json", json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
