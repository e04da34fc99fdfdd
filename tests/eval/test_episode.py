"""Whole episodes on the MuJoCo sim and the virtual clock, with tiny untrained models (the
parts under test are the drivers and the bookkeeping, not the models' skill)."""

import numpy as np
import pytest

from dualctl.config import load_config
from dualctl.eval.episode import Models, run_episode
from dualctl.eval.references import GoalPlanner
from dualctl.eval.results import Job

SEED = 100_000


@pytest.fixture(scope="module")
def models(tiny_checkpoints):
    config = load_config([*tiny_checkpoints, "ablate.episode_s=1.0"])
    models = Models(config)
    # The diffusion planner is not what these tests check; the expert's goal stands in for it.
    models._planner = GoalPlanner(models.expert("Lift", "train", SEED), 8, 2.0)
    return models


def test_each_driver_runs_a_whole_episode_at_its_rate(models, tmp_path):
    results = {arm: run_episode(Job("Lift", arm, "train", SEED, record_video=True), models, tmp_path)
               for arm in ("baseline", "planner-only", "tracker-only-head", "delay-500")}  # fmt: skip
    assert results["baseline"].ticks == 11  # 10 Hz for 1 s, both ends
    assert results["baseline"].plans == 0
    for arm in ("planner-only", "tracker-only-head", "delay-500"):
        assert abs(results[arm].ticks - 201) <= 1  # 200 Hz (the scheduler sums float periods)
        assert results[arm].plans >= 1
    assert results["tracker-only-head"].plan_latency_mean_s < 0.05
    assert results["delay-500"].plan_latency_mean_s >= 0.8 - 1e-9  # 0.3 s planner + 0.5 s injected
    for arm, result in results.items():
        assert (result.success, result.failure_reason) == (False, "unfinished")  # capped at 1 s
        assert (tmp_path / f"Lift_{arm}_train_{SEED}.mp4").stat().st_size > 1000


def test_planner_only_plays_plans_back_open_loop(models, monkeypatch):
    """Commands change only at planned frame times: no feedback between plans."""
    from dualctl.sim.body import SimBody

    sent = []
    original = SimBody.act

    async def spy(self, action):
        sent.append((self._now(), action.to_array()))
        return await original(self, action)

    monkeypatch.setattr(SimBody, "act", spy)
    run_episode(Job("Lift", "planner-only", "train", SEED), models)
    times = np.array([t for t, _ in sent])
    commands = np.array([c for _, c in sent])
    changes = times[1:][np.any(commands[1:] != commands[:-1], axis=1)]
    # Plans are requested every 0.5 s from t=0 and conditioned then; frames every 0.25 s.
    knots = np.arange(0.0, 3.0, 0.25) + 0.3  # first commands once the first plan arrived at 0.3 s
    grid = np.concatenate([np.arange(0.0, 3.0, 0.25), knots])
    assert len(changes) >= 2
    assert np.all(np.min(np.abs(changes[:, None] - grid[None, :]), axis=1) < 1e-6), changes
