"""The interfaces others build on: gymnasium envs, SimBody on a jumping virtual clock, and
``dualctl collect`` (format, resume, merging tasks into one dataset)."""

import asyncio

import dualctl.sim  # noqa: F401  (registers the envs)
import gymnasium as gym
import numpy as np
import pytest
from dualctl.sim.body import SimBody
from dualctl.sim.commands import collect
from dualctl.sim.config import SimConfig, with_cameras
from dualctl.sim.experts import Expert

from dualctl.data.episode import read_dataset_info, read_episode
from dualctl.errors import DataError
from dualctl.types import GRIPPER_FORCE_RANGE, Action, GripperCommand


class VirtualClock:
    def __init__(self, t=50.0):
        self.t = t

    def now(self):
        return self.t


def test_env_steps_at_the_camera_rate_and_reports_the_outcome():
    env = gym.make("dualctl/Fragile-v0").unwrapped
    obs, info = env.reset(seed=3)
    assert obs["image"].shape == (64, 64, 3) and obs["tactile"].shape == (2, 4, 4, 3)
    assert "fragile" in info["instruction"]
    expert = Expert("Fragile", env.world)
    for _ in range(400):
        obs, reward, terminated, truncated, info = env.step(expert.act().to_array())
        if terminated or truncated:
            break
    assert info["success"] and reward == 1.0 and info["failure_reason"] is None
    assert env.world.time == pytest.approx(round(env.world.time * 20) / 20, abs=1e-6)
    env.close()


def test_simbody_follows_a_jumping_clock_and_stamps_each_stream():
    async def scenario():
        clock = VirtualClock()
        body = SimBody("Lift", 2, SimConfig(), clock.now)
        await body.connect()
        expert = Expert("Lift", body.world)
        first = await body.observe()
        assert first.stamps["image/scene"] == 50.0 and np.all(first.tactile == 0.0)
        clock.t += 0.123  # a virtual clock jumps: physics catches up lazily
        obs = await body.observe()
        assert obs.stamps["proprio"] == pytest.approx(50.123, abs=2e-3)
        assert obs.stamps["image/scene"] == pytest.approx(50.1)  # the latest frame due
        big = Action(np.array([9.0, 0, 0, 0]), GripperCommand(0.2, 1.0, 999.0))
        sent = await body.act(big)
        assert sent.gripper.force_n == GRIPPER_FORCE_RANGE[1] and sent.gripper.width_m == 0.085
        assert sent.ee_velocity[0] < 1.0
        while not body.status().done:  # the expert at 200 Hz: same meaning of each action
            clock.t += 0.005
            await body.act(expert.act())
        status = body.status()
        assert body.privileged().object_pos[2] > body.world.object_start_z + 0.09
        await body.close()
        await body.close()
        return status

    status = asyncio.run(scenario())
    assert status.success


def test_collect_writes_resumes_and_merges_tasks(tmp_path):
    config = SimConfig(video_episodes=1)
    collect(tmp_path, ["Lift"], range(2), config)
    first = tmp_path / "episodes" / "lift_000000.npz"
    stamp = first.stat().st_mtime_ns
    episode = read_episode(first)
    assert episode.meta["task"] == "Lift" and episode.meta["camera_hz"] == 20.0
    assert set(episode.meta) >= {"instruction", "seed", "split", "variation", "success",
                                 "failure_reason"}  # fmt: skip
    assert np.diff(episode.timestamp) == pytest.approx(0.05)
    assert (tmp_path / "videos" / "lift_000000.mp4").stat().st_size > 0
    collect(tmp_path, ["Lift", "Place"], range(1), config)
    assert first.stat().st_mtime_ns == stamp, "a finished episode is not recorded again"
    assert read_dataset_info(tmp_path)["tasks"] == ["Lift", "Place"]
    assert (tmp_path / "episodes" / "place_000000.npz").exists()
    with pytest.raises(DataError, match="camera_hz"):
        collect(tmp_path, ["Lift"], range(1), SimConfig(camera_hz=10.0))


def test_the_overhead_camera_sees_the_gripper_reach_more_plainly_than_the_scene_camera():
    config = with_cameras(SimConfig(), ("overhead",))
    assert config.cameras == ("scene", "overhead") and not config.wrist_camera
    env = gym.make("dualctl/Lift-v0", config=config).unwrapped
    obs, _ = env.reset(seed=1)
    start = {"scene": obs["image"], "overhead": obs["image_overhead"]}
    assert env.observation_space["image_overhead"].shape == (64, 64, 3)
    for _ in range(10):  # the stage moves the gripper 5 cm along x, away from the cameras
        obs, *_ = env.step(
            Action(np.array([-0.1, 0, 0, 0]), GripperCommand(0.085, 0.1, 20.0)).to_array()
        )
    moved = {"scene": obs["image"], "overhead": obs["image_overhead"]}
    env.close()
    changed = {
        name: int((np.abs(moved[name].astype(int) - start[name]).sum(-1) > 30).sum())
        for name in start
    }
    # a steeper view turns motion along x into more image motion (and shows another picture)
    assert changed["overhead"] > changed["scene"] > 0
    assert np.abs(start["overhead"].astype(int) - start["scene"]).mean() > 10
