"""The per-tick fast path in numpy: force/tactile encoders and the tracking head replayed from
weights exported out of a :class:`~dualctl.tracker.model.TrackerNet`.

Torch eager costs ~10 us per op; these ~12 small numpy matmuls and elementwise ops keep a tick
to tens of microseconds. The same weights feed both, so training and inference cannot drift.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from dualctl.data.privileged import face_yaw
from dualctl.tracker.model import INPUT_CLIP, PROPRIO_INPUTS, PROPRIO_YAW, TrackerNet


class NumpyMLP:
    """Replays an ``mlp()`` (Linear/ReLU Sequential) on 1-D float32 vectors."""

    def __init__(self, sequential: nn.Sequential):
        linears = [m for m in sequential if isinstance(m, nn.Linear)]
        self.layers = [
            (m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears
        ]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _apply(self.layers, x)


class FastPath:
    """(latent, reference, proprio, wrench history, tactile, flags) -> raw (SI) action vector."""

    def __init__(self, net: TrackerNet):
        self.force = NumpyMLP(net.sensors.force)
        self.tactile = NumpyMLP(net.sensors.tactile)
        self.head = NumpyMLP(net.head)
        self.pose = None
        if net.pose is not None:
            self.pose = (net.pose.weight.detach().numpy().T.copy(),
                         net.pose.bias.detach().numpy().copy())  # fmt: skip
        self.object = None
        if net.object is not None:
            self.object = (net.object.weight.detach().numpy().T.copy(),
                           net.object.bias.detach().numpy().copy())  # fmt: skip
        self.stats = {k: net.stats_numpy(k) for k in ("proprio", "wrench", "tactile", "action")}

    def context(
        self,
        proprio: np.ndarray,
        wrench_history: np.ndarray,
        tactile: np.ndarray,
        force_missing: bool,
        tactile_missing: bool,
    ) -> np.ndarray:
        """Same features as ``TrackerNet.context`` for one sample (flags as bools); wrench
        history (K, 6), tactile history (T, 2, 4, 4, 3), oldest first."""
        return _context(self.stats, self.force.layers, self.tactile.layers, proprio,
                        (wrench_history, tactile), (force_missing, tactile_missing), ())  # fmt: skip

    def action(self, latent: np.ndarray, reference: np.ndarray, context: np.ndarray):
        """The head's action, denormalised to SI units (ACTION_FIELDS order). With a wrist
        camera ``latent`` is the scene latent followed by the wrist features."""
        latent, wrist = latent[: len(reference)], latent[len(reference) :]
        inputs = [latent, reference, reference - latent, context]
        if self.pose is not None:
            inputs.append((reference - latent) @ self.pose[0])  # the probe's bias cancels
        inputs.append(wrist)
        if self.object is not None:
            inputs.append(self._object_features(latent, context))
        x = np.concatenate(inputs)
        a_mean, a_std = self.stats["action"]
        return self.head(x) * a_std + a_mean

    def _object_features(self, latent: np.ndarray, context: np.ndarray) -> np.ndarray:
        """As ``TrackerNet.object_features``: the probe's reading and the turn it asks for."""
        sin_cos = latent @ self.object[0] + self.object[1]
        p_mean, p_std = self.stats["proprio"]
        yaw = context[len(context) - PROPRIO_INPUTS + PROPRIO_YAW] * p_std[PROPRIO_YAW]
        turn = face_yaw(sin_cos[0], sin_cos[1]) - (yaw + p_mean[PROPRIO_YAW])
        return np.append(sin_cos, np.float32(turn)).astype(np.float32)


class StackedFastPath:
    """Several members' fast paths run as one: each layer's weights stacked (members, in, out)
    and applied with one batched matmul, so an ensemble's tick costs about the ops of one
    member's. Members must have equal layer shapes and no pose or object probe
    (:meth:`stackable` tells); their histories are the caller's, shared.
    """

    def __init__(self, paths: list[FastPath]):
        if not self.stackable(paths):
            raise ValueError("fast paths of other shapes or with probes cannot be stacked")
        self.force = _stack_layers([p.force for p in paths])
        self.tactile = _stack_layers([p.tactile for p in paths])
        self.head = _stack_layers([p.head for p in paths])
        self.stats = {
            key: tuple(np.stack([p.stats[key][i] for p in paths])[:, None] for i in (0, 1))
            for key in paths[0].stats
        }

    @staticmethod
    def stackable(paths: list[FastPath]) -> bool:
        def shapes(path: FastPath) -> list[tuple]:
            mlps = (path.force, path.tactile, path.head)
            return [w.shape for mlp in mlps for w, _ in mlp.layers]

        no_probes = all(p.pose is None and p.object is None for p in paths)
        return no_probes and all(shapes(p) == shapes(paths[0]) for p in paths)

    def mean_action(
        self,
        latents: np.ndarray,
        references: np.ndarray,
        proprio: np.ndarray,
        histories: tuple[np.ndarray, np.ndarray],
        missing: tuple[bool, bool],
    ) -> np.ndarray:
        """The members' mean raw (SI) action: ``FastPath.context`` then ``FastPath.action``
        for every member at once; ``latents`` and ``references`` are (members, latent_dim),
        ``histories`` the wrench and tactile histories, ``missing`` their missing flags."""
        members = len(latents)
        context = _context(self.stats, self.force, self.tactile, proprio, histories, missing,
                           (members, 1))  # fmt: skip
        z, ref = latents[:, None], references[:, None]
        x = np.concatenate([z, ref, ref - z, context], 2)
        a_mean, a_std = self.stats["action"]
        return (_apply(self.head, x) * a_std + a_mean).mean(0)[0]


def _stack_layers(mlps: list[NumpyMLP]) -> list[tuple[np.ndarray, np.ndarray]]:
    return [
        (
            np.stack([m.layers[i][0] for m in mlps]),
            np.stack([m.layers[i][1] for m in mlps])[:, None],
        )
        for i in range(len(mlps[0].layers))
    ]


def _apply(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray) -> np.ndarray:
    """Linear/ReLU layers on (in,) -> (out,), or stacked ones on (members, 1, in)."""
    last = len(layers) - 1
    for i, (weight, bias) in enumerate(layers):
        x = x @ weight + bias
        if i < last:
            np.maximum(x, 0.0, out=x)
    return x


def _context(
    stats: dict,
    force_layers: list,
    tactile_layers: list,
    proprio: np.ndarray,
    histories: tuple[np.ndarray, np.ndarray],
    missing: tuple[bool, bool],
    lead: tuple[int, ...],
) -> np.ndarray:
    """``TrackerNet.context``'s features for one member (``lead`` ``()``, stats as saved) or
    for stacked members (``lead`` ``(members, 1)``, stats and layers stacked)."""
    (wrench_history, tactile), (force_missing, tactile_missing) = histories, missing
    (w_mean, w_std), (t_mean, t_std) = stats["wrench"], stats["tactile"]
    p_mean, p_std = stats["proprio"]
    w = _clip_inputs((wrench_history - w_mean) / w_std).reshape(*lead, -1)
    w *= 0.0 if force_missing else 1.0
    taxels = _clip_inputs((tactile - t_mean) / t_std)
    now, earlier = taxels[..., -1, :, :, :, :], taxels[..., :-1, :, :, :, :]
    t = np.concatenate(
        [now.reshape(*lead, -1), earlier.sum((-3, -2)).reshape(*lead, -1)], -1
    )  # per fingertip and channel, totals of the earlier frames
    t *= 0.0 if tactile_missing else 1.0
    force = np.maximum(_apply(force_layers, _with_flag(w, force_missing)), 0.0)
    touch = np.maximum(_apply(tactile_layers, _with_flag(t, tactile_missing)), 0.0)
    pose = _clip_inputs((proprio - p_mean) / p_std)[..., :PROPRIO_INPUTS]
    return np.concatenate([force, touch, pose], -1).astype(np.float32)


def _clip_inputs(x: np.ndarray) -> np.ndarray:
    """``x`` clipped to +-INPUT_CLIP in place: two ufuncs, the same values as np.clip (NaN
    kept) at a third of its cost per call on these small arrays."""
    np.maximum(x, -INPUT_CLIP, out=x)
    return np.minimum(x, INPUT_CLIP, out=x)


def _with_flag(x: np.ndarray, missing: bool) -> np.ndarray:
    """``x`` with its missing flag appended on the last axis."""
    return np.concatenate([x, np.full((*x.shape[:-1], 1), np.float32(missing))], -1)
