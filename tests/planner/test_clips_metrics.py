import numpy as np
import pytest
import torch

from dualctl.errors import ConfigError
from dualctl.planner.clips import (
    ClipDataset,
    frame_stride,
    future_indices,
    load_episodes,
    start_steps,
    weighted_start_steps,
)
from dualctl.planner.config import PlannerTrainConfig
from dualctl.planner.metrics import psnr, ssim


def test_two_second_plan_at_20_hz_takes_every_fifth_step():
    assert frame_stride(8, 2.0, 0.05) == 5
    np.testing.assert_array_equal(future_indices(3, 100, 8, 5), 3 + 5 * np.arange(1, 9))


def test_futures_past_the_end_repeat_the_last_frame():
    assert future_indices(30, 40, 8, 5).tolist() == [35, 39, 39, 39, 39, 39, 39, 39]
    assert start_steps(40, 5).max() == 34


def test_episode_starts_are_listed_start_repeat_times_and_nothing_else_changes():
    steps = weighted_start_steps(40, 5, early_steps=3, repeat=4)
    assert sorted(set(steps.tolist())) == start_steps(40, 5).tolist()
    counts = np.bincount(steps)
    assert counts[:3].tolist() == [4, 4, 4] and (counts[3:] == 1).all()
    latents = [torch.zeros(40, 2, 4, 4), torch.zeros(20, 2, 4, 4)]
    proprio = [torch.zeros(40, 3), torch.zeros(20, 3)]
    plain = ClipDataset(latents, proprio, [0, 1], torch.ones(8, 2), 8, 5)
    weighted = ClipDataset(latents, proprio, [0, 1], torch.ones(8, 2), 8, 5, 3, 4)
    assert len(weighted) == len(plain) + 2 * 3 * 3
    assert [tuple(i) for i in weighted.index].count((1, 0)) == 4


def test_start_repeat_below_one_is_refused_with_its_key():
    with pytest.raises(ConfigError, match="planner.train.start_repeat"):
        PlannerTrainConfig(start_repeat=0)


def test_load_episodes_reads_camera_instruction_and_rate(square_dataset):
    data = load_episodes(square_dataset, "scene")
    assert len(data) == 6 and data.frames[0].shape == (40, 16, 16, 3)
    assert set(data.instructions) == {"move the square right", "move the square down"}
    assert abs(data.frame_dt - 0.05) < 1e-9


def test_psnr_and_ssim_rank_a_closer_image_higher():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    slightly = np.clip(image + rng.normal(0, 5, image.shape), 0, 255).astype(np.uint8)
    very = np.clip(image + rng.normal(0, 60, image.shape), 0, 255).astype(np.uint8)
    assert psnr(image, image) == 100.0 and abs(ssim(image, image) - 1.0) < 1e-9
    assert psnr(image, slightly) > psnr(image, very)
    assert 1.0 > ssim(image, slightly) > ssim(image, very)
