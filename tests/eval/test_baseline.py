import numpy as np
import torch

from dualctl.data.dataset import EpisodeStore
from dualctl.data.episode import Episode
from dualctl.eval.baseline import BaselinePolicy, load_baseline
from dualctl.eval.config import BaselineConfig
from dualctl.eval.training import baseline_task, camera_rate, inverse_dynamics_task, train_regressor
from dualctl.types import ACTION_DIM, PROPRIO_DIM, TACTILE_SHAPE, Observation


def _episode(seed: int, steps: int = 40) -> Episode:
    """A bright square moving right at a speed that is also the commanded vx."""
    rng = np.random.default_rng(seed)
    speed = rng.uniform(-1, 1)
    frames = np.zeros((steps, 32, 32, 3), np.uint8)
    action = np.zeros((steps, ACTION_DIM), np.float32)
    for t in range(steps):
        x = int(np.clip(16 + speed * t * 0.3, 2, 29))
        frames[t, 12:20, x - 2 : x + 2] = 255
        action[t, 0] = speed
    return Episode(
        images={"scene": frames}, proprio=np.zeros((steps, PROPRIO_DIM), np.float32),
        wrench=np.zeros((steps, 6), np.float32), tactile=np.zeros((steps, *TACTILE_SHAPE), np.float32),
        action=action, timestamp=np.arange(steps) / 20.0, meta={"task": "Lift"},
    )  # fmt: skip


def test_baseline_learns_trains_resumes_and_drives(tmp_path):
    torch.set_num_threads(1)
    store = EpisodeStore([_episode(s) for s in range(12)])
    config = BaselineConfig(image_size=32, channels=[8, 8, 16, 16], hidden=32, chunk=4, execute=2,
                            batch_size=32, max_minutes=1.0, val_fraction=0.2)  # fmt: skip
    task = baseline_task(config, camera_rate(store))
    assert task.stride == 2 and task.frame_offsets == (-2, 0)
    first = train_regressor(
        store, config, task, tmp_path / "work", tmp_path / "ckpt", {"camera": "scene"}, max_steps=5
    )
    more = train_regressor(
        store, config, task, tmp_path / "work", tmp_path / "ckpt", {"camera": "scene"}, max_steps=60
    )
    assert more["val_loss_final"] < first["val_loss_final"]  # resumed from step 5 and kept learning
    net, loaded_config, norm, meta = load_baseline(tmp_path / "ckpt")
    assert loaded_config == config and meta["steps"] == 60 and meta["camera"] == "scene"

    policy = BaselinePolicy.load(tmp_path / "ckpt")
    episode = _episode(3)
    commands = []
    for t in range(6):
        obs = Observation(t / 10, {"scene": episode.images["scene"][2 * t]}, episode.proprio[0],
                          np.zeros(6), np.zeros(TACTILE_SHAPE))  # fmt: skip
        commands.append(policy.act(obs).to_array())
    assert policy.chunks == 3  # a new chunk every `execute` calls
    assert np.all(np.isfinite(commands))


def test_inverse_dynamics_task_spans_the_plan_gap():
    task = inverse_dynamics_task(0.25, 20.0)
    assert (task.frame_offsets, task.chunk, task.stride, task.use_proprio) == ((0, 5), 1, 5, False)
