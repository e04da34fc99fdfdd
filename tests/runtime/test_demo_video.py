import numpy as np
from PIL import Image

from dualctl.runtime.demo_video import VIEW, Snapshot, compose_panel, write_videos
from dualctl.types import Plan


def traces(n=50):
    t = np.linspace(0.0, 2.0, n)
    return {
        "t": t, "grip_force_n": 30 * t, "cmd_force_n": np.full(n, 60.0), "wrist_force_n": t,
        "width_m": 0.08 - 0.02 * t, "cmd_width_m": np.full(n, 0.03),
    }  # fmt: skip


def test_panel_shows_camera_plan_and_traces(tmp_path):
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :, 0] = 200
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    frames[:, :, :, 2] = 180
    plan = Plan(frames, 1.0 + 0.25 * np.arange(1, 9), 1.0, 3.5, "lift")
    empty = compose_panel(Snapshot(0.5, image, None, 0.2), traces(), 2.0, "Lift")
    panel = compose_panel(Snapshot(1.5, image, plan, 0.2), traces(), 2.0, "Lift")
    assert panel.shape == empty.shape and panel.shape[0] > VIEW and panel.dtype == np.uint8
    assert panel[10, 10, 0] == 200  # the camera view, upscaled
    plan_area = panel[:VIEW, VIEW : VIEW + 256]
    assert (plan_area[..., 2] == 180).sum() > 8 * 50 * 50  # eight plan thumbnails
    assert (empty[:VIEW, VIEW : VIEW + 256, 2] == 180).sum() < 50  # only the "no plan" text
    trace_area = panel[:VIEW, VIEW + 256 :]
    assert trace_area.std() > 0  # lines drawn

    write_videos([panel, panel, empty, empty] * 3, tmp_path / "x.mp4", tmp_path / "x.gif", fps=10.0)
    assert (tmp_path / "x.mp4").stat().st_size > 0
    gif = Image.open(tmp_path / "x.gif")
    assert gif.n_frames == 6 and gif.info["duration"] == 200  # half rate: 2 / fps
    assert not list(tmp_path.glob(".*tmp*"))


def boxed_thumbnail(snapshot: Snapshot) -> int:
    """Index of the plan thumbnail drawn with the yellow box (4 per row, 64 px, rows 78 px
    apart from y = 24)."""
    strip = compose_panel(snapshot, traces(), 2.0, "Lift")[:VIEW, VIEW : VIEW + 256]
    ys, xs = np.nonzero((strip[..., 0] == 255) & (strip[..., 1] == 220) & (strip[..., 2] == 0))
    return int(xs.min() // 64 + 4 * ((ys.min() - 24) // 78))


def test_the_boxed_plan_frame_is_the_one_the_reference_is_read_at():
    image = np.zeros((64, 64, 3), np.uint8)
    plan = Plan(np.zeros((8, 64, 64, 3), np.uint8), 1.0 + 0.25 * np.arange(1, 9), 1.0, 3.5, "lift")
    assert boxed_thumbnail(Snapshot(1.5, image, plan, 0.25)) == 2  # the clock: 1.75 s
    assert boxed_thumbnail(Snapshot(1.5, image, plan, 0.25, reference_t=1.25)) == 0
