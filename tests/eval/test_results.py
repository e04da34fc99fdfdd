import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from dualctl.errors import DataError
from dualctl.eval.results import RESULT_FIELDS, EpisodeResult, ResultsStore, read_results
from dualctl.eval.runner import make_jobs


def _result(seed: int, success: bool = True) -> EpisodeResult:
    return EpisodeResult("Lift", "full", "train", seed, success, "" if success else "timeout",
                         duration_s=3.5, ticks=700, plans=7, plan_latency_mean_s=0.25)  # fmt: skip


def test_round_trip_keeps_every_column(tmp_path):
    store = ResultsStore(tmp_path / "episodes.csv")
    store.add(_result(1))
    store.add(_result(2, success=False))
    loaded = {r.seed: r for r in read_results(tmp_path / "episodes.csv")}
    assert loaded[1].to_row() == _result(1).to_row()
    assert loaded[2].failure_reason == "timeout" and loaded[2].success is False
    assert loaded[1].ticks == 700 and math.isnan(loaded[1].plan_latency_max_s)
    header = (tmp_path / "episodes.csv").read_text().splitlines()[0]
    assert header.split(",") == list(RESULT_FIELDS)


def test_duplicate_key_is_refused(tmp_path):
    store = ResultsStore(tmp_path / "episodes.csv")
    store.add(_result(1))
    with pytest.raises(DataError):
        store.add(_result(1))


def test_partial_last_line_from_a_crash_is_dropped(tmp_path):
    path = tmp_path / "episodes.csv"
    store = ResultsStore(path)
    store.add(_result(1))
    with open(path, "a") as file:
        file.write("Lift,full,train,2,1,,3.5")  # killed mid-write: no newline
    reopened = ResultsStore(path)
    assert [r.seed for r in reopened.results()] == [1]
    reopened.add(_result(2))
    assert sorted(r.seed for r in read_results(path)) == [1, 2]


def test_other_columns_are_refused(tmp_path):
    path = tmp_path / "episodes.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="columns"):
        ResultsStore(path)


def test_jobs_use_the_same_seeds_in_every_arm():
    jobs = make_jobs(["Lift", "Place"], ["full", "baseline"], ["train", "heldout"], 3, 100, 1)
    assert len(jobs) == 2 * 2 * 2 * 3
    seeds = {
        arm: sorted((j.task, j.split, j.seed) for j in jobs if j.arm == arm)
        for arm in ("full", "baseline")
    }
    assert seeds["full"] == seeds["baseline"]
    assert {j.seed for j in jobs} == {100, 101, 102}
    videos = [j for j in jobs if j.record_video]
    assert {(j.split, j.seed) for j in videos} == {("train", 100)} and len(videos) == 4


FAKE = """
import json, time
from dualctl.eval.results import EpisodeResult

def make(setup):
    def run(job):
        with open(setup["calls"], "a") as f:
            f.write(json.dumps([job.task, job.arm, job.split, job.seed]) + "\\n")
        time.sleep(setup["sleep"])
        ok = job.seed % 3 != 0
        return EpisodeResult(job.task, job.arm, job.split, job.seed, ok, "" if ok else "timeout")
    return run
"""

DRIVER = """
import sys
from dualctl.eval.results import ResultsStore
from dualctl.eval.runner import make_jobs, run_jobs
if __name__ == "__main__":
    out, calls, sleep = sys.argv[1], sys.argv[2], float(sys.argv[3])
    jobs = make_jobs(["Lift", "Place"], ["full", "no-force"], ["train"], 6, 0)
    run_jobs(jobs, ResultsStore(out), "fake_episodes:make", {"calls": calls, "sleep": sleep},
             workers=2, show_progress=False)
"""


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:] if path.exists() else []


def test_killed_run_resumes_without_redoing_finished_episodes(tmp_path):
    (tmp_path / "fake_episodes.py").write_text(FAKE)
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    out, calls = tmp_path / "episodes.csv", tmp_path / "calls.jsonl"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, str(tmp_path / "driver.py"), str(out), str(calls)]
    first = subprocess.Popen([*command, "0.3"], env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while len(_rows(out)) < 6 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # the parent and both workers, mid-run
    first.wait()
    done_before = {tuple(r.split(",")[:4]) for r in _rows(out)}
    assert 6 <= len(done_before) < 24

    calls.write_text("")
    subprocess.run([*command, "0"], env=env, check=True, timeout=60)
    rerun = {tuple(str(x) for x in json.loads(line)) for line in calls.read_text().splitlines()}
    final = [tuple(r.split(",")[:4]) for r in _rows(out)]
    assert len(final) == len(set(final)) == 24  # every episode exactly once
    assert not rerun & done_before  # nothing finished before the kill ran again
    assert rerun | done_before == set(final)


def test_a_pool_worker_ends_when_its_parent_is_gone():
    import os
    import threading

    from dualctl.eval.runner import exit_with_parent

    exits = []
    watcher = threading.Thread(
        target=exit_with_parent, args=(os.getpid(), 0.01, exits.append), daemon=True
    )
    watcher.start()  # our pid is not this thread's parent pid: as if the parent had died
    watcher.join(timeout=2)
    assert exits == [1]
    alive = []
    watcher = threading.Thread(
        target=exit_with_parent, args=(os.getppid(), 0.01, alive.append), daemon=True
    )
    watcher.start()  # the real parent: keeps waiting
    watcher.join(timeout=0.1)
    assert watcher.is_alive() and alive == []
