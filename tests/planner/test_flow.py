import pytest
import torch

from dualctl.planner.flow import flow_loss, guided, sample_times, shift_times, solve
from dualctl.planner.model import paint_change


def point_velocity(target):
    """The exact rectified-flow velocity when all data sits at ``target``."""

    def velocity(x_t, t, text):
        return (x_t - target) / t.view(-1, *([1] * (x_t.dim() - 1)))

    return velocity


@pytest.mark.parametrize("shift", [1.0, 4.0])
@pytest.mark.parametrize("method", ["euler", "heun"])
@pytest.mark.parametrize("steps", [1, 4, 25])
def test_solver_lands_on_the_data_for_any_step_count(method, steps, shift):
    target = torch.full((2, 3, 4), 0.7)
    noise = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0))
    x = solve(point_velocity(target), noise, torch.zeros(2, 1), steps, method, shift)
    torch.testing.assert_close(x, target, atol=1e-5, rtol=0)


def test_time_shift_keeps_the_ends_and_moves_training_towards_the_noise():
    t = torch.linspace(0.0, 1.0, 11)
    torch.testing.assert_close(shift_times(t, 1.0), t)
    shifted = shift_times(t, 4.0)
    assert float(shifted[0]) == 0.0 and float(shifted[-1]) == 1.0
    assert bool((shifted[1:-1] > t[1:-1]).all()) and bool((shifted.diff() > 0).all())
    generator = torch.Generator().manual_seed(0)
    plain = sample_times(20000, torch.Generator().manual_seed(0))
    moved = sample_times(20000, generator, shift=4.0)
    assert float((moved > 0.95).float().mean()) > 5 * float((plain > 0.95).float().mean())


def test_shifted_steps_are_shorter_near_the_noise():
    seen = []

    def velocity(x_t, t, text):
        seen.append(float(t[0]))
        return torch.zeros_like(x_t)

    solve(velocity, torch.zeros(1, 2), torch.zeros(1, 1), 4, "euler", shift=4.0)
    steps = -torch.diff(torch.tensor(seen + [0.0]))
    assert seen[0] == 1.0 and bool((steps.diff() > 0).all())


def test_guidance_extrapolates_from_unconditional_to_conditional():
    def velocity(x_t, t, text):
        return text.view(-1, 1).expand_as(x_t)

    text, null = torch.full((3, 1), 2.0), torch.zeros(1)
    v = guided(velocity, null, guidance=3.0)(torch.zeros(3, 5), torch.ones(3), text)
    torch.testing.assert_close(v, torch.full((3, 5), 6.0))
    assert guided(velocity, null, 1.0) is velocity


def test_flow_loss_is_zero_for_the_exact_velocity():
    target = torch.full((4, 2, 3), -0.3)
    loss = flow_loss(lambda x, t, c: point_velocity(target)(x, t, c), target, torch.zeros(4, 1))
    assert float(loss) < 1e-8


def test_painted_change_keeps_static_pixels_and_real_motion():
    frames = torch.rand(1, 3, 8, 8)
    change = torch.zeros(1, 2, 3, 8, 8)
    change[..., :4] = 0.01  # sampling noise on a static background
    change[..., 2, 6] = 0.5  # something moved here
    painted = paint_change(frames, change, threshold=0.04)
    torch.testing.assert_close(painted[..., :4], frames[:, None, :, :, :4].expand(1, 2, 3, 8, 4))
    torch.testing.assert_close(painted[..., 2, 6], (frames[:, None, :, 2, 6] + 0.5).expand(1, 2, 3))
    torch.testing.assert_close(paint_change(frames, change, 0.0), frames[:, None] + change)


def test_masked_composite_replaces_changing_pixels_by_the_decoded_future():
    frames = torch.zeros(1, 3, 4, 4)
    decoded = torch.full((1, 1, 3, 4, 4), 0.3)
    change = torch.zeros(1, 1, 3, 4, 4)
    change[..., 0, 0] = 0.5
    painted = paint_change(frames, change, threshold=0.1, decoded=decoded)
    torch.testing.assert_close(painted[..., 0, 0], torch.full((1, 1, 3), 0.3))
    assert float(painted[..., 1:, :].abs().max()) == 0.0


def test_blended_composite_mixes_the_decoded_future_in_by_how_much_a_pixel_changes():
    frames = torch.zeros(1, 3, 4, 4)
    decoded = torch.full((1, 1, 3, 4, 4), 0.6)
    change = torch.zeros(1, 1, 3, 4, 4)
    change[..., 0, 0] = 0.5  # a large change: the decoded future alone
    change[..., 0, 1] = 0.1  # a third of the scale: a third of the decoded future
    painted = paint_change(frames, change, 0.0, decoded=decoded, blend_scale=0.3)
    torch.testing.assert_close(painted[..., 0, 0], torch.full((1, 1, 3), 0.6))
    torch.testing.assert_close(painted[..., 0, 1], torch.full((1, 1, 3), 0.2))
    assert float(painted[..., 1:, :].abs().max()) == 0.0  # no change: the real pixels


def test_blended_composite_leaves_no_halo_where_the_decoder_blurs():
    """Where the decoded current frame is darker than the real one (the decoder's blur of a dark
    arm), adding the change brightens the table past the decoded future; blending does not."""
    frames = torch.full((1, 3, 1, 1), 0.5)
    decoded_current = torch.full((1, 1, 3, 1, 1), 0.3)
    decoded = torch.full((1, 1, 3, 1, 1), 0.6)
    change = decoded - decoded_current
    added = paint_change(frames, change, 0.0)
    blended = paint_change(frames, change, 0.0, decoded=decoded, blend_scale=0.3)
    assert float(added.max()) > 0.6
    torch.testing.assert_close(blended, decoded)
