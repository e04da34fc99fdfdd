"""The tracker's whole training recipe from the sim dataset, every stage timed: the time #4 asks
about ("training to these bars takes <= 20 minutes on this 2-core machine").

Stages (each a ``dualctl`` command or a bench script, run as subprocesses; two processes where
the stage splits by task):

1. touch demos: ``bench/tracker_touch_demos.py`` (the touch teacher, ``--demos`` per task);
2. readers: ``dualctl train grasp-pose`` and ``place-pose`` on the sim dataset, into the final
   folder, so every rollout below runs with the servos the shipped tracker runs with;
3. behaviour cloning: ``dualctl train tracker tracker=recipe`` on the touch demos;
4. DAgger round 1: ``bench/tracker_dagger.py`` rollouts of the BC tracker (beta 0.5, then 0.2),
   then ``tracker=recipe_round1`` from the BC weights on everything aggregated;
5. DAgger round 2: rollouts of round 1 (beta 0.3), then ``tracker=recipe_round2`` from the BC
   weights (``configs/tracker/recipe*.yaml``).

    MUJOCO_GL=egl python bench/tracker_recipe.py [--work out/recipe] [--seed 0]
        [--demos 120] [--bc-steps N] [--round1-steps N] [--round2-steps N]

The tracker lands in ``<work>/tracker`` with its readers; measure it with
``bench/tracker_oracle.py --checkpoint <work>/tracker`` (add ``--hand-pose checkpoints/tracker``
for the carry servo: the recipe trains no hand-pose reader, a third reader would take it past
20 minutes). Resumable: finished stages are recorded in ``<work>/recipe.json`` and skipped
(their time kept); a stage cut short runs again (the demo and rollout scripts keep the
episodes they have). Writes the stage times to ``bench/results/tracker_recipe.json`` and
prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dualctl.data.episode import atomic_write_text

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
TASK_HALVES = ("Lift,Fragile", "Slippery,Place")


def _stages(args: argparse.Namespace) -> list[tuple[str, list[list[str]]]]:
    """(name, commands run side by side) in order."""
    work, py, seed = Path(args.work), sys.executable, str(args.seed)
    touch, bc, r1 = work / "touch", work / "bc", work / "round1"
    dagger1, dagger2, final = work / "dagger1", work / "dagger2", work / "tracker"
    train = [str(Path(py).parent / "dualctl"), "train"]
    common = [f"seed={seed}", "trainer.threads=2"]

    def tracker(recipe: str, data: Path, init: Path | None, export: Path, steps: int | None):
        init_arg = [f"tracker.train.init={init}"] if init else []
        steps_arg = [f"tracker.train.max_steps={steps}"] if steps else []
        return [*train, "tracker", f"tracker={recipe}", f"data={data}", *common, *init_arg,
                *steps_arg, f"tracker.train.export={export}",
                f"out={work / 'runs' / export.name}"]  # fmt: skip

    def rollouts(out: Path, demos: Path, checkpoint: Path, episodes: int, first: int, beta):
        return [[py, str(BENCH / "tracker_dagger.py"), "--out", str(out), "--demos", str(demos),
                 "--checkpoint", str(checkpoint), "--episodes", str(episodes),
                 "--seed", str(first), "--beta", str(beta), "--tasks", half,
                 "--grasp-pose", str(final), "--place-pose", str(final)]
                for half in TASK_HALVES]  # fmt: skip

    def reader(kind: str) -> list[str]:
        key = kind.replace("-", "_")
        return [*train, kind, f"tracker={key}", f"data={args.data}", *common,
                f"tracker.{key}.export={final}", f"out={work / 'runs' / key}"]  # fmt: skip

    demos = [[py, str(BENCH / "tracker_touch_demos.py"), "--out", str(touch), "--episodes",
              str(args.demos), "--tasks", half] for half in TASK_HALVES]  # fmt: skip
    return [
        ("touch demos", demos),
        ("grasp-pose reader", [reader("grasp-pose")]),
        ("place-pose reader", [reader("place-pose")]),
        ("behaviour cloning", [tracker("recipe", touch, None, bc, args.bc_steps)]),
        ("round 1 rollouts, beta 0.5", rollouts(dagger1, touch, bc, 40, 5000, 0.5)),
        ("round 1 rollouts, beta 0.2", rollouts(dagger1, touch, bc, 60, 6000, 0.2)),
        ("round 1 training", [tracker("recipe_round1", dagger1, bc, r1, args.round1_steps)]),
        ("round 2 rollouts, beta 0.3", rollouts(dagger2, dagger1, r1, 60, 7000, 0.3)),
        ("round 2 training", [tracker("recipe_round2", dagger2, bc, final, args.round2_steps)]),
    ]


def _run_side_by_side(commands: list[list[str]], log: Path) -> None:
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "OMP_NUM_THREADS": "1"}
    with log.open("a") as out:
        running = [subprocess.Popen(c, stdout=out, stderr=subprocess.STDOUT, env=env)
                   for c in commands]  # fmt: skip
        codes = [p.wait() for p in running]
    if any(codes):
        failed = [" ".join(c) for c, code in zip(commands, codes) if code]
        raise SystemExit(f"stage failed (log {log}): {failed[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="out/recipe", help="folder for every stage's output")
    parser.add_argument("--data", default="data/sim", help="the sim dataset (readers)")
    parser.add_argument("--seed", type=int, default=0, help="training seed of every stage")
    parser.add_argument("--demos", type=int, default=120, help="touch demos per task")
    for stage in ("bc", "round1", "round2"):
        parser.add_argument(f"--{stage}-steps", type=int, default=None,
                            help="training steps of the stage (default: its config's)")  # fmt: skip
    parser.add_argument("--json", default=str(RESULTS / "tracker_recipe.json"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    state_path = work / "recipe.json"
    state = json.loads(state_path.read_text()) if state_path.is_file() else {"stages": {}}
    settings = {k: v for k, v in vars(args).items() if k != "json"}
    for key, before in state.get("settings", {}).items():
        if settings.get(key) != before:
            parser.error(f"--{key.replace('_', '-')}={settings.get(key)!r}, but {state_path} was "
                         f"started with {before!r}: resume with the same settings or pick "
                         "another --work")  # fmt: skip
    state["settings"] = settings
    console = Console()
    for name, commands in _stages(args):
        if name in state["stages"]:
            console.print(f"[dim]{name}: done before ({state['stages'][name]:.0f} s)[/dim]")
            continue
        console.print(f"[bold]{name}[/bold]: {len(commands)} process(es)")
        started = time.monotonic()
        _run_side_by_side(commands, work / "recipe.log")
        state["stages"][name] = round(time.monotonic() - started, 1)
        atomic_write_text(state_path, json.dumps(state, indent=2))
    total = sum(state["stages"].values())
    state["total_s"] = round(total, 1)
    table = Table(title=f"tracker recipe ({work})")
    table.add_column("stage")
    table.add_column("s", justify="right")
    for name, seconds in state["stages"].items():
        table.add_row(name, f"{seconds:.0f}")
    table.add_row("[bold]total[/bold]", f"[bold]{total:.0f} ({total / 60:.1f} min)[/bold]")
    console.print(table)
    atomic_write_text(state_path, json.dumps(state, indent=2))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.json), json.dumps(state, indent=2))


if __name__ == "__main__":
    main()
