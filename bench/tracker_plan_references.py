"""References from the planner for the tracker's head: copy a dataset's episodes with, at every
step, the frame the runtime would have shown the tracker from the diffusion planner's plans.

Why: the head is trained on references cut from real futures (hindsight frames of demos, the
expert's frames in DAgger rollouts), sharp and exactly where things go. The planner's frames
are neither: the block and arm ghost and blur, so in closed loop the head meets references
unlike any it was trained on. Here each episode is replayed through the planner as the runtime
runs it: a plan conditioned on the frame, proprio and instruction every ``--replan-s``
(starting at a random phase), usable ``--latency-s`` after its observation; the reference at
step ``t`` is the latest usable plan's frame nearest ``t + lookahead``. The copy keeps the
episode's labels and stores that frame as the ``reference`` camera, so training pairs each
label with a planner reference (``tracker.train.recorded_references``). The source episodes
are linked beside the copies, so one training run sees both kinds of reference.

    python bench/tracker_plan_references.py --data data/sim_dg1 --out data/sim_planref
        [--planner checkpoints/planner] [--replan-s 0.5] [--latency-s 0.3]
        [--lookahead-s 0.5] [--shard 0/1] [--limit N] [--match 'dagger_*'] [--prefix s1_]

Resumable: copies already in ``--out`` are kept. ``--shard i/n`` handles every n-th episode
from the i-th, so n processes can share the work.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from dualctl.config import load_config
from dualctl.data.dataset import REFERENCE_CAMERA
from dualctl.data.episode import (
    episode_paths,
    read_dataset_info,
    read_episode,
    write_dataset_info,
    write_episode,
)
from dualctl.planner.diffusion_planner import load_planner
from dualctl.tracker.plan_references import with_planner_references

PREFIX = "planref_"


def link_sources(out: Path, sources: list[Path], prefix: str) -> None:
    """Symlink the source episodes into ``out/episodes`` under their names with ``prefix``."""
    for path in sources:
        link = out / "episodes" / f"{prefix}{path.name}"
        with contextlib.suppress(FileExistsError):  # there already, or another shard's
            link.symlink_to(os.path.relpath(path.resolve(), link.parent.resolve()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/sim_dg1")
    parser.add_argument("--out", default="data/sim_planref")
    parser.add_argument("--planner", default="checkpoints/planner")
    parser.add_argument(
        "--composite", default=load_config().planner.composite,
        help="how the plans are painted (default: the runtime's planner.composite)",
    )  # fmt: skip
    parser.add_argument("--replan-s", type=float, default=0.5, help="runtime.replan_period_s")
    parser.add_argument("--latency-s", type=float, default=0.3, help="runtime.plan_latency_s")
    parser.add_argument("--lookahead-s", type=float, default=0.5, help="tracker.lookahead_s")
    parser.add_argument("--shard", default="0/1", help="i/n: every n-th episode from the i-th")
    parser.add_argument("--limit", type=int, default=0, help="first N episodes only (0 = all)")
    parser.add_argument("--match", default="*.npz", help="only source episodes matching this")
    parser.add_argument(
        "--prefix", default="", help="put before the names in --out (to add a second source)"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    index, count = (int(x) for x in args.shard.split("/"))
    if not 0 <= index < count:
        parser.error(f"--shard: {args.shard!r} needs 0 <= i < n")
    data, out = Path(args.data), Path(args.out)
    info = read_dataset_info(data)
    sources = [p for p in episode_paths(data) if p.match(args.match)][: args.limit or None]
    planner = load_planner(args.planner, threads=args.threads, composite=args.composite)
    (out / "episodes").mkdir(parents=True, exist_ok=True)
    matching = "" if args.match == "*.npz" else f" matching {args.match}"
    source = (
        f"bench/tracker_plan_references.py ({args.planner}, replan {args.replan_s} s, latency "
        f"{args.latency_s} s, lookahead {args.lookahead_s} s) on {data}{matching}, linked"
    )
    if (out / "dataset.json").is_file():  # a further source: keep what is there, name both
        info = read_dataset_info(out)
        source = f"{info['source']}; {source}" if source not in info["source"] else info["source"]
    camera = planner.config.camera
    if camera not in info.get("cameras", {}):
        parser.error(f"{data} has no '{camera}' camera (has {sorted(info.get('cameras', {}))}), "
                     f"the one the planner {args.planner} imagines")  # fmt: skip
    cameras = {**info["cameras"], REFERENCE_CAMERA: info["cameras"][camera]}
    write_dataset_info(out, {**info, "cameras": cameras, "source": source})
    link_sources(out, sources, args.prefix)
    mine = [(i, p) for i, p in enumerate(sources) if i % count == index]
    started = time.monotonic()
    with Progress() as progress:
        bar = progress.add_task(f"planner references {args.shard}", total=len(mine))
        for i, source in mine:
            path = out / "episodes" / f"{PREFIX}{args.prefix}{source.name}"
            if not path.is_file():  # resuming: written (atomically) by an earlier run
                rng = np.random.default_rng(i)
                episode = with_planner_references(read_episode(source), planner, rng,
                                                  args.replan_s, args.latency_s,
                                                  args.lookahead_s)  # fmt: skip
                write_episode(path, episode)
            progress.update(bar, advance=1)
    print(f"{len(mine)} episodes in {time.monotonic() - started:.0f} s -> {out}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
