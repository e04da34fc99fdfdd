"""Write an ablation's report folder: ``report.md`` plus the PNG plots it embeds."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dualctl.data.episode import atomic_write_text
from dualctl.eval.plots import success_by_arm, success_vs_delay
from dualctl.eval.report import markdown_report
from dualctl.eval.results import EpisodeResult

SUCCESS_PNG = "success_by_arm.png"
DELAY_PNG = "success_vs_delay.png"


def write_report(
    results: Sequence[EpisodeResult],
    out: Path,
    arms: Sequence[str] = (),
    tasks: Sequence[str] = (),
    splits: Sequence[str] = (),
) -> Path | None:
    """Write ``out/report.md`` and its plots; None (nothing written) when there are no results."""
    if not results:
        return None
    out = Path(out)
    plots = [success_by_arm(results, out / SUCCESS_PNG, arms, tasks).name]
    delay = success_vs_delay(results, out / DELAY_PNG, tasks)
    if delay is not None:
        plots.append(delay.name)
    path = out / "report.md"
    atomic_write_text(path, markdown_report(results, arms, tasks, splits, plots))
    return path
