"""Markdown for an ablation: success with 95 % Wilson intervals per task x arm x split, the
failure reasons, loop and plan-latency statistics, and the comparisons the ablation is run to
answer, each with Newcombe's interval for the difference and a plain verdict.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from dualctl.eval.config import arm_sort_key
from dualctl.eval.results import EpisodeResult
from dualctl.eval.stats import Rate, difference_interval, rate


@dataclass(frozen=True)
class Comparison:
    """A question the ablation answers: does ``arm`` beat ``other`` on ``task``?"""

    question: str
    task: str
    arm: str
    other: str


#: The comparisons issue 8 expects; each is reported whichever way it comes out.
CONTACT_TASKS = ("Fragile", "Slippery")
ALL_TASKS = ("Lift", "Place", "Fragile", "Slippery")
EXPECTED = (
    Comparison("planner helps (vs goal-frame tracker, head)", "Place", "full", "tracker-only-head"),
    Comparison("planner helps (vs goal-frame tracker, MPC)", "Place", "full", "tracker-only-mpc"),
    *(
        Comparison(f"{what} helps", task, "full", arm)
        for task in CONTACT_TASKS
        for what, arm in (
            ("force", "no-force"),
            ("touch", "no-tactile"),
            ("force+touch", "no-touch"),
        )
    ),
    *(
        Comparison("fast feedback helps (vs open-loop plan)", t, "full", "planner-only")
        for t in CONTACT_TASKS
    ),
    *(Comparison("hierarchy beats single-rate baseline", t, "full", "baseline") for t in ALL_TASKS),
)


def cell_rates(results: Sequence[EpisodeResult]) -> dict[tuple[str, str, str], Rate]:
    """(task, arm, split) -> success rate with its Wilson interval."""
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        cell = counts[(r.task, r.arm, r.split)]
        cell[0] += int(r.success)
        cell[1] += 1
    return {key: rate(s, n) for key, (s, n) in counts.items()}


def ordered(values, preferred: Sequence[str] = ()) -> list[str]:
    """Distinct ``values``: those in ``preferred`` first, in its order, then the rest sorted
    (arms in their canonical order, delay arms by delay)."""
    present = list(dict.fromkeys(values))
    first = [v for v in preferred if v in present]
    return first + sorted((v for v in present if v not in first), key=arm_sort_key)


def _fmt_rate(r: Rate | None) -> str:
    if r is None:
        return "–"
    return f"{r.value:.2f} [{r.low:.2f}, {r.high:.2f}] ({r.successes}/{r.trials})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def success_tables(
    results: Sequence[EpisodeResult],
    arms: Sequence[str] = (),
    tasks: Sequence[str] = (),
    splits: Sequence[str] = (),
) -> list[str]:
    """One table per split: arms down, tasks across (plus all tasks pooled)."""
    rates = cell_rates(results)
    arms = ordered((r.arm for r in results), arms)
    tasks = ordered((r.task for r in results), tasks)
    lines = []
    for split in ordered((r.split for r in results), splits):
        lines += [
            f"**Success, {split} split** — rate [95 % Wilson interval] (successes/episodes)",
            "",
        ]
        rows = []
        for arm in arms:
            row = [f"`{arm}`"] + [_fmt_rate(rates.get((task, arm, split))) for task in tasks]
            cells = [rates[(t, arm, split)] for t in tasks if (t, arm, split) in rates]
            pooled = rate(sum(c.successes for c in cells), sum(c.trials for c in cells))
            rows.append(row + [_fmt_rate(pooled if cells else None)])
        lines += _table(["arm", *tasks, "all tasks"], rows) + [""]
    return lines


def failure_table(results: Sequence[EpisodeResult], arms: Sequence[str] = ()) -> list[str]:
    """Episodes per failure reason, per arm (all tasks and splits pooled)."""
    by_arm: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_arm[r.arm][r.failure_reason if not r.success else "success"] += 1
    reasons = sorted({reason for c in by_arm.values() for reason in c if reason != "success"})
    rows = []
    for arm in ordered(by_arm, arms):
        counter = by_arm[arm]
        rows.append([f"`{arm}`", str(sum(counter.values())), str(counter["success"])]
                    + [str(counter[reason]) for reason in reasons])  # fmt: skip
    return (
        ["**Failure reasons** (episodes, all tasks and splits)", ""]
        + _table(["arm", "episodes", "success", *reasons], rows)
        + [""]
    )


def _mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def loop_table(results: Sequence[EpisodeResult], arms: Sequence[str] = ()) -> list[str]:
    """Per arm: plan latency (virtual s), plans per episode, tick compute (wall ms), overruns."""
    by_arm: dict[str, list[EpisodeResult]] = defaultdict(list)
    for r in results:
        by_arm[r.arm].append(r)
    rows = []
    for arm in ordered(by_arm, arms):
        rs = by_arm[arm]
        rows.append([
            f"`{arm}`",
            f"{_mean([r.plan_latency_mean_s for r in rs]):.3f}",
            f"{max((r.plan_latency_max_s for r in rs if math.isfinite(r.plan_latency_max_s)), default=float('nan')):.3f}",
            f"{_mean([float(r.plans) for r in rs]):.1f}",
            f"{1e3 * _mean([r.tick_compute_mean_s for r in rs]):.2f}",
            f"{_mean([float(r.overruns) for r in rs]):.1f}",
            f"{_mean([float(r.safety_events) for r in rs]):.1f}",
            _top_kinds(rs),
            f"{_mean([r.wall_s for r in rs]):.1f}",
        ])  # fmt: skip
    header = ["arm", "plan latency mean (s)", "max (s)", "plans/episode", "tick compute (ms)",
              "overruns/episode", "safety events/episode", "most common", "wall s/episode"]  # fmt: skip
    return ["**Loop statistics** (means over episodes)", ""] + _table(header, rows) + [""]


def _top_kinds(results: Sequence[EpisodeResult], top: int = 2) -> str:
    """The most frequent safety interventions over ``results``, e.g. "speed_limit 61 %"."""
    counts: Counter = Counter()
    for r in results:
        for item in filter(None, r.safety_kinds.split(";")):
            kind, _, count = item.rpartition(":")
            counts[kind] += int(count)
    total = sum(counts.values())
    return ", ".join(f"{k} {100 * n / total:.0f} %" for k, n in counts.most_common(top)) or "–"


def verdict(a: Rate, b: Rate) -> tuple[str, tuple[float, float]]:
    """'better', 'worse' or 'no clear difference', by whether the 95 % interval excludes 0."""
    low, high = difference_interval(a, b)
    if low > 0:
        return "better", (low, high)
    if high < 0:
        return "worse", (low, high)
    return "no clear difference", (low, high)


def comparison_table(
    results: Sequence[EpisodeResult], comparisons: Sequence[Comparison] = EXPECTED
) -> list[str]:
    """Each expected comparison present in the results, per split."""
    rates = cell_rates(results)
    rows = []
    for split in ordered((r.split for r in results), ("train", "heldout")):
        for c in comparisons:
            a, b = rates.get((c.task, c.arm, split)), rates.get((c.task, c.other, split))
            if a is None or b is None:
                continue
            word, (low, high) = verdict(a, b)
            rows.append([c.question, c.task, split, f"`{c.arm}` vs `{c.other}`",
                         f"{a.value:.2f} vs {b.value:.2f}",
                         f"{a.value - b.value:+.2f} [{low:+.2f}, {high:+.2f}]", word])  # fmt: skip
    if not rows:
        return []
    header = ["question", "task", "split", "arms", "success", "difference [95 % CI]", "verdict"]
    return (
        [
            "**Expected effects** — 'better' only when the 95 % interval of the difference "
            "(Newcombe hybrid score) excludes 0",
            "",
        ]  # fmt: skip
        + _table(header, rows)
        + [""]
    )


def markdown_report(
    results: Sequence[EpisodeResult],
    arms: Sequence[str] = (),
    tasks: Sequence[str] = (),
    splits: Sequence[str] = (),
    plots: Sequence[str] = (),
) -> str:
    """The whole report; ``plots`` are image paths relative to where the Markdown is written."""
    lines = success_tables(results, arms, tasks, splits)
    lines += comparison_table(results)
    lines += failure_table(results, arms)
    lines += loop_table(results, arms)
    lines += [f"![{p}]({p})" for p in plots]
    return "\n".join(lines).rstrip() + "\n"
