"""Ablation plots (PNG, Agg backend): success per arm per task, and success against the
planner latency injected by the ``delay-<ms>`` arms. Error bars are 95 % Wilson intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from dualctl.data.episode import atomic_write_bytes  # noqa: E402
from dualctl.eval.config import DELAY_ARM  # noqa: E402
from dualctl.eval.report import cell_rates, ordered  # noqa: E402
from dualctl.eval.results import EpisodeResult  # noqa: E402


def _save(figure, path: Path) -> Path:
    atomic_write_bytes(path, lambda f: figure.savefig(f, format="png", dpi=90))
    plt.close(figure)
    return Path(path)


def success_by_arm(
    results: Sequence[EpisodeResult],
    path: Path,
    arms: Sequence[str] = (),
    tasks: Sequence[str] = (),
) -> Path:
    """Grouped bars: one group per task, one bar per arm (delay arms left to the other plot);
    one panel per split."""
    rates = cell_rates(results)
    arms = [a for a in ordered((r.arm for r in results), arms) if not DELAY_ARM.match(a)]
    tasks = ordered((r.task for r in results), tasks)
    splits = ordered((r.split for r in results), ("train", "heldout"))
    figure, axes = plt.subplots(
        len(splits),
        1,
        figsize=(max(6, 1.2 * len(tasks) * len(arms) / 3), 3.2 * len(splits)),
        squeeze=False,
    )
    width = 0.8 / max(1, len(arms))
    colours = plt.get_cmap("tab10")
    for ax, split in zip(axes[:, 0], splits, strict=True):
        for i, arm in enumerate(arms):
            xs, ys, errs = [], [], [[], []]
            for t, task in enumerate(tasks):
                r = rates.get((task, arm, split))
                if r is None:
                    continue
                xs.append(t - 0.4 + width * (i + 0.5))
                ys.append(r.value)
                errs[0].append(r.value - r.low)
                errs[1].append(r.high - r.value)
            colour = colours(i % 10)
            ax.bar(xs, ys, width, yerr=errs, capsize=2, label=arm, color=colour,
                   error_kw={"ecolor": colour, "alpha": 0.8})  # fmt: skip
            # A tick at the rate, so a zero success rate still shows which arm it is.
            ax.plot(xs, ys, linestyle="none", marker="_", markersize=8, color=colour)
        ax.set_xticks(range(len(tasks)), tasks)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("success rate")
        ax.set_title(f"{split} split (95 % Wilson intervals)")
    axes[0, 0].legend(
        fontsize=7, ncol=min(len(arms), 5), loc="upper center", bbox_to_anchor=(0.5, 1.35)
    )
    figure.tight_layout()
    return _save(figure, path)


def delay_arms(results: Sequence[EpisodeResult]) -> dict[str, int]:
    """Arm name -> injected delay (ms) for every ``delay-<ms>`` arm present; ``full`` is the
    0 ms point when there is no ``delay-0`` arm (it is the same controller)."""
    found = {}
    for r in results:
        match = DELAY_ARM.match(r.arm)
        if match:
            found[r.arm] = int(match.group(1))
    if found and 0 not in found.values() and any(r.arm == "full" for r in results):
        found["full"] = 0
    return found


def success_vs_delay(
    results: Sequence[EpisodeResult], path: Path, tasks: Sequence[str] = ()
) -> Path | None:
    """Success against injected planner delay (ms), one line per task, one panel per split.
    None when the results hold no delay arms."""
    delays = delay_arms(results)
    if not delays:
        return None
    rates = cell_rates(results)
    tasks = ordered((r.task for r in results), tasks)
    splits = ordered((r.split for r in results), ("train", "heldout"))
    figure, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 3.4), squeeze=False)
    for ax, split in zip(axes[0], splits, strict=True):
        for task in tasks:
            points = sorted(
                (ms, rates[(task, arm, split)])
                for arm, ms in delays.items()
                if (task, arm, split) in rates
            )
            if not points:
                continue
            ms = np.array([p[0] for p in points], float)
            value = np.array([p[1].value for p in points])
            low = np.array([p[1].low for p in points])
            high = np.array([p[1].high for p in points])
            (line,) = ax.plot(ms, value, marker="o", label=task)
            ax.fill_between(ms, low, high, alpha=0.15, color=line.get_color())
        ax.set_xlabel("injected planner delay (ms)")
        ax.set_ylabel("success rate")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{split} split")
        ax.legend(fontsize=8)
    figure.tight_layout()
    return _save(figure, path)
