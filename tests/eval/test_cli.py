import csv

from dualctl.cli import main


def _rows(path):
    with open(path) as file:
        return list(csv.DictReader(file))


def test_ablate_command_writes_report_and_resumes(tiny_checkpoints, tmp_path):
    out = tmp_path / "ablate"
    args = ["ablate", *tiny_checkpoints, f"ablate.out={out}", "ablate.workers=1", "ablate.episode_s=0.5",
            "ablate.tasks=[Lift]", "ablate.splits=[train]", "ablate.arms=[baseline,tracker-only-head]",
            "ablate.delays_ms=[]", "ablate.episodes_per_cell=2", "ablate.videos_per_arm=1"]  # fmt: skip
    assert main(args) == 0
    rows = _rows(out / "episodes.csv")
    assert sorted((r["arm"], r["seed"]) for r in rows) == [
        ("baseline", "100000"), ("baseline", "100001"),
        ("tracker-only-head", "100000"), ("tracker-only-head", "100001"),
    ]  # fmt: skip
    report = (out / "report.md").read_text()
    assert "| `baseline` |" in report and "(0/2)" in report
    assert (out / "success_by_arm.png").stat().st_size > 1000
    assert sorted(p.name for p in (out / "videos").glob("*.mp4")) == [
        "Lift_baseline_train_100000.mp4",
        "Lift_tracker-only-head_train_100000.mp4",
    ]  # lowest seed

    # Rerun with one more episode per cell: only the new seed runs, the old rows stay as they were.
    assert main([*args[:-2], "ablate.episodes_per_cell=3", "ablate.videos_per_arm=1"]) == 0
    again = _rows(out / "episodes.csv")
    assert again[:4] == rows and sorted(r["seed"] for r in again[4:]) == ["100002", "100002"]

    # Other settings into the same folder are refused, not mixed in.
    assert main([*args, "runtime.plan_latency_s=0.1"]) == 2


def test_ablate_refuses_a_planner_of_another_camera_than_the_trackers(tmp_path, capsys):
    out = tmp_path / "ablate"
    args = ["ablate", "ablate.tracker_checkpoint=checkpoints/tracker_overhead",
            f"ablate.out={out}", "ablate.arms=[full]", "ablate.delays_ms=[]"]  # fmt: skip
    assert main(args) == 2  # the shipped planner imagines the scene camera
    assert "ablate.planner_checkpoint" in capsys.readouterr().err
    assert not out.exists()  # refused before anything ran or was written
