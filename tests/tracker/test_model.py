"""The network's parts: EMA target, numpy fast path = torch, missing modalities, backends."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dualctl.config import load_config
from dualctl.data.dataset import REFERENCE_CAMERA, EpisodeStore, WindowDataset, collate_arrays
from dualctl.data.episode import read_episode
from dualctl.errors import ConfigError
from dualctl.tracker.encoders import KeypointImageEncoder, SpatialSoftmax
from dualctl.tracker.fastpath import FastPath
from dualctl.tracker.jepa import JepaTracker
from dualctl.tracker.lit import TrackerLightning, colour_jitter, window_offsets
from dualctl.tracker.model import NORMALISED, TrackerNet, images_to_float
from dualctl.types import Observation

from .conftest import SMALL


def small_config(*extra):
    return load_config([*SMALL, "tracker.tactile_history=3", *extra]).tracker


def trained_parts(store, steps=5, pose_probe=False, object_probe=False, **kw):
    config = small_config(f"tracker.pose_probe={pose_probe}", f"tracker.object_probe={object_probe}",
                          *[f"tracker.train.{k}={v}" for k, v in kw.items()])  # fmt: skip
    torch.manual_seed(0)
    net = TrackerNet(config)
    net.set_stats({k: store.stats(k) for k in NORMALISED})
    return config, net


def flat_params(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_ema_target_moves_slower_than_the_online_encoder(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store, ema_start=0.95, ema_end=0.99)
    module = TrackerLightning(net, config)
    windows = WindowDataset(store, window_offsets(config), require_future=config.horizon)
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    online0, target0 = flat_params(net.encoder), flat_params(net.target_encoder)
    for step in range(5):
        batch = collate_arrays(windows.__getitems__(list(range(step * 8, step * 8 + 8))))
        loss = module.total(module.losses(batch, train=True))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        net.update_target(0.95)
    assert all(p.grad is None for p in net.target_encoder.parameters())
    online_moved = (flat_params(net.encoder) - online0).norm()
    target_moved = (flat_params(net.target_encoder) - target0).norm()
    assert online_moved > 0
    assert 0 < target_moved < 0.5 * online_moved


def observation(rng, wrench_scale=1.0):
    return Observation(
        timestamp=0.0, images={}, proprio=rng.normal(size=10),
        wrench=rng.normal(size=6) * wrench_scale, tactile=rng.normal(size=(2, 4, 4, 3)),
    )  # fmt: skip


@pytest.mark.parametrize(
    "force_missing,tactile_missing,pose_probe,object_probe",
    [(0, 0, False, False), (1, 0, False, False), (0, 1, False, False), (1, 1, False, False),
     (0, 0, True, False), (1, 1, True, False), (0, 0, False, True), (0, 0, True, True)],
)  # fmt: skip
def test_numpy_fast_path_matches_torch(synthetic_dataset, force_missing, tactile_missing,
                                       pose_probe, object_probe):  # fmt: skip
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store, pose_probe=pose_probe, object_probe=object_probe)
    rng = np.random.default_rng(0)
    obs = observation(rng)
    history = np.stack([obs.wrench] * config.force_history).astype(np.float32)
    touches = rng.normal(size=(config.tactile_history, 2, 4, 4, 3)).astype(np.float32)
    z, ref = rng.normal(size=(2, config.latent_dim)).astype(np.float32)
    fast = FastPath(net)
    context = fast.context(obs.proprio, history, touches, force_missing, tactile_missing)
    vector = fast.action(z, ref, context)
    with torch.no_grad():
        flags = [torch.tensor([[float(force_missing)]]), torch.tensor([[float(tactile_missing)]])]
        torch_context = net.context(torch.from_numpy(obs.proprio)[None],
                                    torch.from_numpy(history)[None],
                                    torch.from_numpy(touches)[None], *flags)  # fmt: skip
        expected = net.denormalise("action", net.head_action(
            torch.from_numpy(z)[None], torch.from_numpy(ref)[None], torch_context))[0]  # fmt: skip
    np.testing.assert_allclose(context, torch_context[0].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(vector, expected.numpy(), rtol=1e-4, atol=1e-4)


def test_dropped_modalities_ignore_their_inputs(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.drop_force, config.drop_tactile = True, True
    tracker = JepaTracker(net, config)
    rng = np.random.default_rng(1)
    z, ref = rng.normal(size=(2, config.latent_dim)).astype(np.float32)
    calm, shaken = observation(np.random.default_rng(2)), observation(rng, wrench_scale=50)
    shaken.proprio = calm.proprio
    a = tracker.act(calm, z, ref).to_array()
    tracker.reset()
    b = tracker.act(shaken, z, ref).to_array()
    np.testing.assert_allclose(a, b, rtol=1e-5)
    config.drop_force, config.drop_tactile = False, False
    full = JepaTracker(net, config)
    assert not np.allclose(full.act(calm, z, ref).to_array(), a)


def test_wrench_history_keeps_one_sample_per_frame_period(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    tracker = JepaTracker(net, config)
    for i, t in enumerate(np.arange(0, 0.2, 0.005)):  # 200 Hz ticks, 20 Hz frames
        tracker.wrench_history.update(np.full(6, float(i), np.float32), float(t))
    history = tracker.wrench_history.values[:, 0]
    assert history[-1] == 39
    assert np.all(np.diff(history) >= 9)  # slots ~10 ticks (one frame period) apart


def test_encode_shapes_and_resizing(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    tracker = JepaTracker(net, config)
    frames = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 3), dtype=np.uint8)
    latents = tracker.encode(frames)
    assert latents.shape == (3, config.latent_dim) and latents.dtype == np.float32
    assert images_to_float(torch.from_numpy(frames), 32).shape == (3, 3, 32, 32)


def test_channels_last_encode_matches_the_training_layout(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    frames = np.random.default_rng(0).integers(0, 255, (2, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = net.eval().encode(images_to_float(torch.from_numpy(frames), 32).contiguous())
    tracker = JepaTracker(net, config)
    conv = next(m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(tracker.encode(frames), expected.numpy(), rtol=1e-4, atol=1e-5)


def test_vjepa2_tracker_keeps_its_3d_patch_weights():
    config = small_config("tracker.encoder=vjepa2", "tracker.vjepa2_hidden_size=32",
                          "tracker.vjepa2_layers=1")  # fmt: skip
    tracker = JepaTracker(TrackerNet(config), config)
    frames = np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    assert np.isfinite(tracker.encode(frames)).all()


def test_vjepa2_backend_tiny_random_config():
    config = small_config("tracker.encoder=vjepa2", "tracker.vjepa2_hidden_size=32",
                          "tracker.vjepa2_layers=1")  # fmt: skip
    net = TrackerNet(config)
    images = torch.rand(2, 3, 32, 32)
    latents = net.encode(images)
    assert latents.shape == (2, config.latent_dim)
    latents.sum().backward()
    grads = [p.grad for p in net.encoder.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_latent_mpc_returns_a_finite_action(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store)
    config.controller = "mpc"
    tracker = JepaTracker(net, config)
    rng = np.random.default_rng(0)
    z, ref = rng.normal(size=(2, config.latent_dim)).astype(np.float32)
    action = tracker.act(observation(rng), z, ref)
    assert action.is_finite()
    assert tracker.mpc.previous is not None


def test_the_head_learns_from_the_reference_it_was_shown_when_one_is_recorded(synthetic_dataset):
    paths = sorted((synthetic_dataset / "episodes").glob("*.npz"))
    shown = read_episode(paths[0])
    shown.images[REFERENCE_CAMERA] = 255 - shown.images["scene"]
    store = EpisodeStore([shown, read_episode(paths[1])])
    config, net = trained_parts(store)
    module = TrackerLightning(net.eval(), config)
    windows = WindowDataset(store, window_offsets(config, stored_reference=True), 4)
    batch = collate_arrays(windows.__getitems__([2, len(shown) + 2]))
    head_loss = module.losses(batch, train=False)["head"]
    images = images_to_float(torch.cat([batch["frames"][:, 0], batch["reference_frames"][:, 0],
                                        batch["frames"][:, -1]]), config.image_size)  # fmt: skip
    now, recorded, hindsight = net.encode(images).view(3, 2, -1)
    context = net.context(batch["proprio"][:, 0], batch["wrench"], batch["tactile"],
                          torch.zeros(2, 1), torch.zeros(2, 1))  # fmt: skip
    reference = torch.stack([recorded[0], hindsight[1]])
    expected = F.mse_loss(net.head_action(now, reference, context),
                          net.normalise("action", batch["action"][:, 0]))  # fmt: skip
    wrong = F.mse_loss(net.head_action(now, hindsight, context),
                       net.normalise("action", batch["action"][:, 0]))  # fmt: skip
    assert torch.allclose(head_loss, expected, atol=1e-5)
    assert not torch.allclose(head_loss, wrong, atol=1e-5)


def loss_before_and_after(net, config, store, name: str, steps: int, stride: int,
                          limit: int | None = None) -> tuple[float, float]:  # fmt: skip
    """The loss ``name`` on a fixed batch (every ``stride``-th window, of the first ``limit``),
    before and after ``steps`` Adam steps on it alone."""
    module = TrackerLightning(net, config)
    windows = WindowDataset(store, window_offsets(config), require_future=config.horizon)
    rows = range(0, min(len(windows), limit or len(windows)), stride)
    batch = collate_arrays(windows.__getitems__(list(rows)))
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=3e-3)
    first = module.losses(batch, train=False)[name].item()
    for _ in range(steps):
        loss = module.losses(batch, train=True)[name]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return first, module.losses(batch, train=False)[name].item()


def test_pose_probe_loss_pulls_the_latent_towards_the_pose(synthetic_dataset):
    store = EpisodeStore.load(synthetic_dataset)
    config, net = trained_parts(store, pose_probe=True)
    first, last = loss_before_and_after(net, config, store, "pose", 40, stride=5, limit=400)
    assert last < 0.5 * first


def test_colour_jitter_recolours_each_window_alike_and_keeps_the_range():
    torch.manual_seed(0)
    windows, frames = 6, 3
    images = torch.rand(windows * frames, 3, 8, 8)
    jittered = colour_jitter(images.clone(), windows)
    assert jittered.shape == images.shape
    assert jittered.min() >= 0.0 and jittered.max() <= 1.0
    assert not torch.allclose(jittered, images)
    for w in range(windows):
        before = images[w * frames : (w + 1) * frames]
        after = jittered[w * frames : (w + 1) * frames]
        # One channel order and one gain per window: each output channel is a scaled copy of
        # one input channel (where nothing clipped), the same for every frame of the window.
        for c in range(3):
            ratios = [
                (after[:, c] / before[:, k].clamp_min(1e-6))[after[:, c] < 0.99].std()
                for k in range(3)
            ]
            assert min(ratios) < 1e-4


def test_spatial_softmax_finds_a_peak_and_follows_it():
    points = SpatialSoftmax(channels=1, keypoints=1, height=9, width=9)
    with torch.no_grad():
        points.points.weight.fill_(1.0)
        points.points.bias.zero_()
    coordinates = []
    for row, col in ((2, 6), (7, 1)):
        features = torch.zeros(1, 1, 9, 9)
        features[0, 0, row, col] = 50.0
        coordinates.append(points(features)[0])
    # grid in [-1, 1] over 9 cells: cell i sits at -1 + i / 4; output is (x, y) = (col, row)
    assert torch.allclose(coordinates[0], torch.tensor([0.5, -0.5]), atol=1e-3)
    assert torch.allclose(coordinates[1], torch.tensor([-0.75, 0.75]), atol=1e-3)


def test_keypoint_encoder_moves_its_keypoints_with_the_object():
    config = small_config("tracker.pool=keypoints", "tracker.coord_channels=false",
                          "tracker.keypoints=4")  # fmt: skip
    torch.manual_seed(0)
    net = TrackerNet(config)
    encoder = net.encoder
    assert isinstance(encoder, KeypointImageEncoder)
    images = torch.zeros(2, 3, 32, 32)
    images[0, :, 4:10, 4:10] = 1.0
    images[1, :, 20:26, 20:26] = 1.0
    with torch.no_grad():
        encoder.keypoints.log_temperature.fill_(-3.0)  # sharp maps, so the peak decides
        points = encoder.keypoints(encoder.backbone(images * 2 - 1)[encoder.stage])
    assert net.encode(images).shape == (2, config.latent_dim)
    shift = points[1].view(-1, 2) - points[0].view(-1, 2)  # (x, y) per keypoint
    assert (shift > 0).float().mean() > 0.5  # the square moved right and down


def test_keypoint_stage_outside_the_backbone_is_named():
    with pytest.raises(ConfigError, match="tracker.keypoint_stage"):
        TrackerNet(small_config("tracker.pool=keypoints", "tracker.keypoint_stage=9"))
