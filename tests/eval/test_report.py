from PIL import Image

from dualctl.eval.plots import success_by_arm, success_vs_delay
from dualctl.eval.report import cell_rates, markdown_report
from dualctl.eval.results import EpisodeResult


def _results():
    out = []
    for task, arm, successes in [("Place", "full", 9), ("Place", "tracker-only-head", 1),
                                 ("Place", "delay-0", 8), ("Place", "delay-1000", 3),
                                 ("Lift", "full", 5), ("Lift", "tracker-only-head", 5)]:  # fmt: skip
        for seed in range(10):
            ok = seed < successes
            out.append(EpisodeResult(task, arm, "train", seed, ok, "" if ok else "dropped",
                                     plans=4, plan_latency_mean_s=0.3))  # fmt: skip
    return out


def test_cell_rates_count_each_cell():
    rates = cell_rates(_results())
    assert (
        rates[("Place", "full", "train")].successes,
        rates[("Place", "full", "train")].trials,
    ) == (9, 10)
    assert rates[("Lift", "tracker-only-head", "train")].value == 0.5


def test_markdown_has_intervals_failures_and_verdicts():
    text = markdown_report(_results(), arms=["full", "tracker-only-head"], plots=["success.png"])
    assert "0.90 [0.60, 0.98] (9/10)" in text  # Wilson 9/10 = [0.596, 0.982]
    assert "| `full` |" in text.split("**Failure reasons**")[1]
    # full 9/10 vs tracker-only 1/10 on Place: the interval of the difference excludes 0.
    place_row = next(
        line for line in text.splitlines() if "planner helps" in line and "head" in line
    )
    assert "| better |" in place_row
    assert "dropped" in text and "![success.png](success.png)" in text


def test_plots_write_pngs(tmp_path):
    bars = success_by_arm(_results(), tmp_path / "success.png")
    delay = success_vs_delay(_results(), tmp_path / "delay.png")
    for path in (bars, delay):
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] > 100
    no_delay = [r for r in _results() if not r.arm.startswith("delay-")]
    assert success_vs_delay(no_delay, tmp_path / "none.png") is None
