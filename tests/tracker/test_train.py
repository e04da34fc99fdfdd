"""`dualctl train tracker` end to end on the synthetic fixture, then what loading promises."""

import json
import shutil

import numpy as np
import pytest
import torch

from dualctl.cli import main
from dualctl.config import load_config
from dualctl.data.dataset import EpisodeStore
from dualctl.errors import CheckpointError
from dualctl.tracker.checkpoint import load_checkpoint
from dualctl.tracker.evaluate import prediction_errors
from dualctl.tracker.jepa import load_tracker
from dualctl.tracker.lit import head_loss_fn
from dualctl.types import Observation

from .conftest import SMALL, write_synthetic_dataset

TRAIN = [*SMALL, "tracker.train.max_steps=200", "tracker.train.lr=3e-3",
         "tracker.train.ema_start=0.9", "tracker.train.ema_end=0.95"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(synthetic_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={out}", *TRAIN])
    assert status == 0
    return out / "tracker"


def test_training_writes_checkpoint_logs_and_summary(trained):
    export = trained / "export"
    assert (export / "model.safetensors").is_file() and (export / "config.yaml").is_file()
    assert (trained / "lightning" / "last.ckpt").is_file()
    metrics = (trained / "logs" / "csv" / "version_0" / "metrics.csv").read_text()
    assert "train/latent_std_min" in metrics and "val/rollout" in metrics
    summary = json.loads((export / "train_summary.json").read_text())
    assert summary["steps"] == 200 and summary["seed"] == 0


def test_trained_predictor_beats_copying_the_last_latent(trained, tmp_path):
    heldout = write_synthetic_dataset(tmp_path / "heldout", episodes=4)
    net, config = load_checkpoint(trained / "export")
    report = prediction_errors(net, EpisodeStore.load(heldout), horizon=4)
    assert report.predictor[1] < report.copy_last[1]
    assert report.predictor[4] < 0.8 * report.copy_last[4]
    assert report.latent_std.min() > 0.05  # no collapsed dimension


@pytest.mark.parametrize("modalities", [("force", "tactile"), ("force",), ("tactile",), ()])
def test_loaded_tracker_runs_with_any_modalities(trained, modalities):
    tracker = load_tracker(trained / "export", modalities=modalities)
    assert tracker.force_missing == ("force" not in modalities)
    assert tracker.tactile_missing == ("tactile" not in modalities)
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    z = tracker.encode(frames)
    obs = Observation(0.0, {}, np.zeros(10), np.ones(6), np.ones((2, 4, 4, 3)))
    action = tracker.act(obs, z[0], z[1])
    assert action.is_finite()


def test_missing_checkpoint_names_path_and_fix(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'nope'}.*dualctl train tracker"):
        load_tracker(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.yaml"):
        load_tracker(tmp_path / "empty")


def test_mismatched_config_names_the_keys(trained):
    config = load_config([*SMALL, "tracker.latent_dim=32"]).tracker
    with pytest.raises(CheckpointError, match="tracker.latent_dim=32 .checkpoint has 16"):
        load_tracker(trained / "export", config=config)
    same = load_config([*SMALL, "tracker.controller=mpc"]).tracker
    assert load_tracker(trained / "export", config=same).mpc is not None
    assert load_tracker(trained / "export", lookahead_s=0.2).lookahead_s == 0.2
    with pytest.raises(CheckpointError, match=r"lookahead_s=0.4 .checkpoint trained for 0.2..0.2"):
        load_tracker(trained / "export", lookahead_s=0.4)  # trained at exactly 0.2 s


def test_weights_and_config_from_different_runs_are_refused(trained, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(trained / "export", folder)
    text = (folder / "config.yaml").read_text().replace("hidden_dim: 64", "hidden_dim: 128")
    (folder / "config.yaml").write_text(text)
    with pytest.raises(CheckpointError, match="different runs"):
        load_tracker(folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_tracker(folder)


def test_resume_continues_from_the_last_checkpoint(trained, synthetic_dataset):
    out = trained.parent
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={out}", *TRAIN[:-3],
                   "tracker.train.max_steps=210", "tracker.train.resume=true"])  # fmt: skip
    assert status == 0
    summary = json.loads((trained / "export" / "train_summary.json").read_text())
    assert summary["steps"] == 210


def test_resume_takes_the_latest_run_in_a_reused_folder(trained, synthetic_dataset, tmp_path):
    out = tmp_path / "reused"
    shutil.copytree(trained.parent, out)  # a folder whose last.ckpt is the 200-step run's
    again = ["train", "tracker", f"data={synthetic_dataset}", f"out={out}", *TRAIN[:-3]]
    assert main([*again, "tracker.train.max_steps=30"]) == 0
    assert main([*again, "tracker.train.max_steps=40", "tracker.train.resume=true"]) == 0
    summary = json.loads((out / "tracker" / "export" / "train_summary.json").read_text())
    assert summary["steps"] == 40  # the 30-step run continued, not the 200-step one


def test_resume_without_a_checkpoint_is_a_config_error(synthetic_dataset, tmp_path):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.resume=true"])  # fmt: skip
    assert status == 2


def test_init_fine_tunes_from_a_checkpoint(trained, synthetic_dataset, tmp_path):
    start, _ = load_checkpoint(trained / "export")
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.max_steps=1", "tracker.train.lr=1e-7",
                   f"tracker.train.init={trained / 'export'}"])  # fmt: skip
    assert status == 0
    tuned, _ = load_checkpoint(tmp_path / "tracker" / "export")
    tuned_state = tuned.state_dict()
    for key, value in start.state_dict().items():
        if key.startswith(("head.", "sensors.")) or key.endswith(("_mean", "_std")):
            assert np.allclose(tuned_state[key].numpy(), value.numpy(), atol=1e-4), key


@pytest.mark.parametrize("probe,module", [("pose_probe", "pose"), ("object_probe", "object")])
def test_init_adds_a_probe_that_starts_acting_like_the_checkpoint(
    trained, synthetic_dataset, tmp_path, probe, module
):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.max_steps=1", "tracker.train.lr=1e-7", f"tracker.{probe}=true",
                   f"tracker.train.init={trained / 'export'}"])  # fmt: skip
    assert status == 0
    start, grown = (load_tracker(p) for p in (trained / "export", tmp_path / "tracker" / "export"))
    assert getattr(grown.net, module) is not None and getattr(start.net, module) is None
    rng = np.random.default_rng(1)
    z, ref = rng.normal(size=(2, start.latent_dim)).astype(np.float32)
    context = rng.normal(size=start.net.context_dim).astype(np.float32)
    np.testing.assert_allclose(grown.fast.action(z, ref, context), start.fast.action(z, ref, context),
                               rtol=1e-2, atol=1e-3)  # fmt: skip


def test_init_from_a_mismatched_checkpoint_is_refused(trained, synthetic_dataset, tmp_path):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.latent_dim=32", f"tracker.train.init={trained / 'export'}"])  # fmt: skip
    assert status == 2
    assert not (tmp_path / "tracker" / "export").exists()


@pytest.mark.parametrize("loss", ["mse", "l1"])
def test_head_stage_refits_only_the_head_and_lowers_its_loss(
    trained, synthetic_dataset, tmp_path, loss
):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.max_steps=0", "tracker.train.head_steps=300",
                   f"tracker.train.head_loss={loss}",
                   f"tracker.train.init={trained / 'export'}"])  # fmt: skip
    assert status == 0
    export = tmp_path / "tracker" / "export"
    summary = json.loads((export / "train_summary.json").read_text())
    assert summary["steps"] == 0 and summary["head_steps"] == 300
    metrics = summary["metrics"]
    assert metrics["head_stage/val_head"] < metrics["head_stage/val_head_before"]
    start, refit = load_checkpoint(trained / "export")[0], load_checkpoint(export)[0]
    refit_state = refit.state_dict()
    changed = {k for k, v in start.state_dict().items() if not torch.equal(v, refit_state[k])}
    assert changed and all(key.startswith("head.") for key in changed)


def test_head_only_refit_needs_a_checkpoint(synthetic_dataset, tmp_path, capsys):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.max_steps=0", "tracker.train.head_steps=10"])  # fmt: skip
    assert status == 2
    assert "tracker.train.max_steps" in capsys.readouterr().err


def test_an_unknown_head_loss_is_refused_by_name(synthetic_dataset, tmp_path, capsys):
    status = main(["train", "tracker", f"data={synthetic_dataset}", f"out={tmp_path}", *SMALL,
                   "tracker.train.head_loss=huber"])  # fmt: skip
    assert status == 2
    error = capsys.readouterr().err
    assert "tracker.train.head_loss" in error and "huber" in error and "l1" in error


@pytest.mark.parametrize(("loss", "fitted"), [("mse", 1.0 / 3.0), ("l1", 1.0)])
def test_the_l1_head_loss_follows_the_majority_of_conflicting_labels(loss, fitted):
    # Two visits of a state labelled "up" (+1), one "down" (-1): the mean hovers, the median
    # goes up.
    labels = torch.tensor([[1.0], [1.0], [-1.0]])
    action = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.SGD([action], lr=0.01)
    for _ in range(2000):
        optimiser.zero_grad()
        head_loss_fn(loss)(action.expand(3, 1), labels).backward()
        optimiser.step()
    assert action.item() == pytest.approx(fitted, abs=0.02)
