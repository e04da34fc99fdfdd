"""The demo's video: one panel per camera frame with the camera view, the plan being followed
as a strip of frames, and force/tactile traces up to that moment; written as MP4 and GIF.

Drawing uses PIL (a few hundred microseconds per panel), not matplotlib, so a whole episode
renders in about a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dualctl.types import GRIPPER_STROKE_M, Plan

VIEW = 256  # camera view side, px
THUMB = 64  # plan thumbnail side, px
PLAN_COLUMNS = 4
TRACE_W, TRACE_H = 320, 256
CAPTION_H = 36
BACKGROUND = (24, 24, 28)
COLOURS = {
    "grip_force_n": (255, 120, 90),
    "cmd_force_n": (255, 200, 150),
    "wrist_force_n": (120, 200, 255),
    "width_m": (140, 230, 140),
    "cmd_width_m": (200, 255, 200),
}


@dataclass
class Snapshot:
    """What one panel shows: a camera frame at ``t`` (s) and the plan being followed then, with
    the frame the tracker's reference is read at boxed: the one nearest ``reference_t`` (s, on
    the plan's timeline), or ``t + lookahead_s`` when that is not known."""

    t: float
    image: np.ndarray
    plan: Plan | None
    lookahead_s: float
    reference_t: float | None = None


def _font():
    return ImageFont.load_default()


def _camera(image: np.ndarray) -> Image.Image:
    return Image.fromarray(image).resize((VIEW, VIEW), Image.NEAREST)


def _plan_strip(snapshot: Snapshot) -> Image.Image:
    rows = 2
    strip = Image.new("RGB", (PLAN_COLUMNS * THUMB, VIEW), BACKGROUND)
    draw = ImageDraw.Draw(strip)
    plan = snapshot.plan
    if plan is None:
        draw.text((8, 8), "no plan yet", fill=(200, 200, 200), font=_font())
        return strip
    target = snapshot.reference_t
    if target is None:
        target = snapshot.t + snapshot.lookahead_s
    current = int(np.argmin(np.abs(plan.times - target)))
    top = 24
    for k in range(min(plan.horizon, rows * PLAN_COLUMNS)):
        x, y = (k % PLAN_COLUMNS) * THUMB, top + (k // PLAN_COLUMNS) * (THUMB + 14)
        strip.paste(Image.fromarray(plan.frames[k]).resize((THUMB, THUMB), Image.NEAREST), (x, y))
        draw.text((x + 2, y + THUMB), f"+{plan.times[k] - plan.conditioned_at:.2f}s",
                  fill=(170, 170, 170), font=_font())  # fmt: skip
        if k == current:
            draw.rectangle([x, y, x + THUMB - 1, y + THUMB - 1], outline=(255, 220, 0), width=2)
    age = snapshot.t - plan.conditioned_at
    draw.text((4, 4), f"plan (age {age:.2f}s)", fill=(230, 230, 230), font=_font())
    return strip


def _traces(traces: dict[str, np.ndarray], t_now: float, t_end: float) -> Image.Image:
    """Force (N) on top, finger width (mm) below, from the episode's start to ``t_now``."""
    panel = Image.new("RGB", (TRACE_W, TRACE_H), BACKGROUND)
    draw = ImageDraw.Draw(panel)
    t = traces["t"]
    shown = t <= t_now
    t0 = t[0] if len(t) else 0.0
    span = max(t_end - t0, 1e-3)
    halves = {
        "force (N)": (("grip_force_n", "cmd_force_n", "wrist_force_n"), 0, 1.0),
        "width (mm)": (("width_m", "cmd_width_m"), 1, 1e3),
    }
    height = TRACE_H // 2
    for title, (names, row, scale) in halves.items():
        top = row * height
        values = [traces[name][shown] * scale for name in names]
        high = max([float(v.max()) for v in values if len(v)] + [GRIPPER_STROKE_M * 1e3 * row, 1.0])
        draw.text((4, top + 2), title, fill=(230, 230, 230), font=_font())
        draw.line([(0, top + height - 1), (TRACE_W, top + height - 1)], fill=(70, 70, 70))
        for name, series in zip(names, values):
            if len(series) < 2:
                continue
            xs = (t[shown] - t0) / span * (TRACE_W - 1)
            ys = top + height - 2 - series / high * (height - 18)
            draw.line(list(zip(xs.tolist(), ys.tolist())), fill=COLOURS[name], width=1)
        legend_x = 90
        for name in names:
            draw.text((legend_x, top + 2), name.split("_")[0] if "cmd" not in name else "cmd",
                      fill=COLOURS[name], font=_font())  # fmt: skip
            legend_x += 48
    return panel


def compose_panel(
    snapshot: Snapshot, traces: dict[str, np.ndarray], t_end: float, caption: str
) -> np.ndarray:
    """One video frame: camera | plan strip | traces, with a caption line below."""
    width = VIEW + PLAN_COLUMNS * THUMB + TRACE_W
    frame = Image.new("RGB", (width, VIEW + CAPTION_H), BACKGROUND)
    frame.paste(_camera(snapshot.image), (0, 0))
    frame.paste(_plan_strip(snapshot), (VIEW, 0))
    frame.paste(_traces(traces, snapshot.t, t_end), (VIEW + PLAN_COLUMNS * THUMB, 0))
    draw = ImageDraw.Draw(frame)
    draw.text((6, VIEW + 4), caption, fill=(235, 235, 235), font=_font())
    return np.asarray(frame)


def write_videos(frames: list[np.ndarray], mp4: Path, gif: Path, fps: float) -> None:
    """Write ``frames`` as an MP4 and a half-size, half-rate GIF, each atomically."""
    mp4.parent.mkdir(parents=True, exist_ok=True)
    _atomic(mp4, lambda tmp: _write_mp4(tmp, frames, fps))
    small = [Image.fromarray(f[::2, ::2]) for f in frames[::2]]
    frame_ms = int(round(2000.0 / fps))
    _atomic(
        gif,
        lambda tmp: small[0].save(
            tmp, format="GIF", save_all=True, append_images=small[1:], duration=frame_ms, loop=0
        ),
    )


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> None:
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(frame)


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
