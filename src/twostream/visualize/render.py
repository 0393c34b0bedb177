"""``render_vis``: optimise a batch of inputs so that an objective is maximised.

The loop (lucent-style, plain torch): each step draws one circular shift, applies
it alike to every input (so appearance and motion stay aligned), runs the model,
reads the recorded activations, and takes an Adam step on

    loss = -objective + w_l2_rgb * L2(rgb - 0.5) + w_tv_rgb * TV(rgb)
                      + w_l2_flow * L2(flow) + w_tv_flow * TV(flow)
                      + w_temporal * temporal_variation(flow)

Each weight may be a scalar or one value per sample. A run is deterministic for
its seeds: sample ``b`` is initialised from ``seeds[b]`` and the jitter sequence
from ``jitter_seed``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Sequence

import numpy as np
import torch

from ..errors import InputError
from . import regularizers as R
from .objectives import OUTPUT, Objective
from .params import InputSet

Weight = float | Sequence[float]


@dataclass
class Weights:
    """Regulariser weights (scalar, or one per sample)."""

    l2_rgb: Weight = 1.0
    tv_rgb: Weight = 1.0
    l2_flow: Weight = 1.0
    tv_flow: Weight = 1.0
    temporal: Weight = 1.0

    def tensor(self, name: str, batch: int) -> torch.Tensor:
        v = torch.as_tensor(getattr(self, name), dtype=torch.float32).reshape(-1)
        if v.numel() == 1:
            return v.expand(batch)
        if v.numel() != batch:
            raise InputError(f"weight {name}: {v.numel()} values for a batch of {batch}")
        return v

    def at(self, b: int) -> dict[str, float]:
        """The scalar weights of sample ``b``."""
        out = {}
        for f in fields(self):
            v = np.asarray(getattr(self, f.name), dtype=float).reshape(-1)
            out[f.name] = float(v[0] if v.size == 1 else v[b])
        return out


@dataclass
class Preprocess:
    """How the optimised values become the model's inputs.

    RGB (in [0, 1] after the sigmoid) is normalised as (x - mean) / std; the models of
    this project normalise inside, so the defaults are the identity. Flow is optimised
    in the network's units (the values after the model's own ``x / flow_std``), so the
    penalty weights do not depend on ``flow_std``: the model receives
    ``value * flow_scale`` pixels/frame, and the saved flow is in pixels/frame.
    """

    rgb_mean: Sequence[float] = (0.0, 0.0, 0.0)
    rgb_std: Sequence[float] = (1.0, 1.0, 1.0)
    flow_scale: float = 1.0
    flow_layout: str = "interleaved"

    def network(self, x: dict[str, torch.Tensor], kinds: dict[str, str]) -> dict[str, torch.Tensor]:
        out = {}
        for name, t in x.items():
            if kinds[name] == "rgb":
                m = torch.as_tensor(self.rgb_mean, dtype=t.dtype).view(1, -1, 1, 1)
                s = torch.as_tensor(self.rgb_std, dtype=t.dtype).view(1, -1, 1, 1)
                t = (t - m) / s
            else:
                t = t * float(self.flow_scale)
            out[name] = t
        return out


class Probe:
    """Runs a model and returns the activations of named layers plus its output.

    Two ways to reach a layer: models with ``forward_stages(*inputs, upto=stage)`` and a
    ``stages`` tuple (this project's streams and fused networks) are run only up to the
    deepest stage asked for; any other layer name is a dotted submodule path whose
    output is recorded by a forward hook during a full forward pass.
    ``OUTPUT`` is the model's return value.
    """

    def __init__(self, model: torch.nn.Module, layers: Sequence[str], names: Sequence[str]):
        self.model = model
        self.names = tuple(getattr(model, "modalities", None) or names)
        self.layers = [l for l in dict.fromkeys(layers) if l != OUTPUT]
        stages = tuple(getattr(model, "stages", ()) or ())
        self.use_stages = hasattr(model, "forward_stages") and all(l in stages for l in self.layers)
        if self.use_stages and self.layers:
            self.upto = max(self.layers, key=stages.index)
        self.modules = {}
        if not self.use_stages:
            for name in self.layers:
                try:
                    self.modules[name] = model.get_submodule(name)
                except AttributeError:
                    known = list(stages) or [n for n, _ in model.named_children()]
                    raise InputError(f"model has no layer {name!r} (layers: {', '.join(known)})") from None

    def __call__(self, x: dict[str, torch.Tensor], output: bool = True) -> dict[str, torch.Tensor]:
        args = [x[n] for n in self.names]
        if self.use_stages:
            acts: dict[str, torch.Tensor] = {}
            if self.layers:
                acts = dict(self.model.forward_stages(*args, upto=self.upto))
            if output:
                acts[OUTPUT] = self.model(*args)
            return acts
        acts = {}
        handles = []
        for name, mod in self.modules.items():

            def hook(_m, _inp, out, name=name):
                acts[name] = out[0] if isinstance(out, (tuple, list)) else out

            handles.append(mod.register_forward_hook(hook))
        try:
            out = self.model(*args)
        finally:
            for h in handles:
                h.remove()
        acts[OUTPUT] = out
        return acts


@dataclass
class Rendered:
    """The result of one batched optimisation (numpy arrays, batch first)."""

    inputs: dict[str, np.ndarray]  # rgb: (B, H, W, 3) in [0,1]; flow: (B, L, H, W, 2) in px/frame
    objective: np.ndarray  # (B,) objective at the final, unshifted input
    probabilities: np.ndarray | None  # (B, classes) softmax of the model's output, if it is a vector
    history: np.ndarray  # (steps, B) objective during optimisation
    weights: Weights
    seeds: list[int]
    extra: dict = field(default_factory=dict)


def _shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1)) if (dy or dx) else x


def _frozen(model: torch.nn.Module):
    @contextlib.contextmanager
    def cm():
        was_training = model.training
        flags = [(p, p.requires_grad) for p in model.parameters()]
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p, f in flags:
                p.requires_grad_(f)
            model.train(was_training)

    return cm()


def render_vis(
    model: torch.nn.Module,
    objective: Objective,
    inputs: InputSet,
    weights: Weights | None = None,
    steps: int = 200,
    lr: float = 0.05,
    jitter: int = 3,
    jitter_seed: int = 0,
    preprocess: Preprocess | None = None,
    progress: bool = False,
) -> Rendered:
    """Maximise ``objective`` over ``inputs`` (see the module docstring)."""
    weights = weights or Weights()
    pre = preprocess or Preprocess()
    kinds = dict(zip(inputs.spec.names, inputs.spec.kinds))
    probe = Probe(model, objective.layers, inputs.spec.names)
    needs_output = OUTPUT in objective.layers
    b = next(iter(inputs.inputs.values())).batch
    w = {f.name: weights.tensor(f.name, b) for f in fields(weights)}
    gen = torch.Generator().manual_seed(int(jitter_seed))
    opt = torch.optim.Adam(inputs.parameters(), lr=lr)
    history = np.zeros((steps, b), np.float32)

    def penalty(x: dict[str, torch.Tensor]) -> torch.Tensor:
        pen = torch.zeros(b)
        for name, t in x.items():
            if kinds[name] == "rgb":
                pen = pen + w["l2_rgb"] * R.l2(t, 0.5) + w["tv_rgb"] * R.spatial_tv(t)
            else:
                pen = pen + w["l2_flow"] * R.l2(t) + w["tv_flow"] * R.spatial_tv(t)
                pen = pen + w["temporal"] * R.temporal_variation(t, pre.flow_layout)
        return pen

    it = range(steps)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=objective.name, leave=False)
    with _frozen(model):
        for step in it:
            opt.zero_grad(set_to_none=True)
            x = inputs()
            if jitter > 0:
                dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen)).tolist()
                xs = {k: _shift(v, dy, dx) for k, v in x.items()}
            else:
                xs = x
            acts = probe(pre.network(xs, kinds), output=needs_output)
            score = objective(acts)
            loss = (-score + penalty(x)).sum()
            loss.backward()
            opt.step()
            history[step] = score.detach().numpy()
        with torch.no_grad():
            x = inputs()
            acts = probe(pre.network(x, kinds))
            final = objective(acts).numpy()
            out = acts[OUTPUT]
            probs = torch.softmax(out, 1).numpy() if out.dim() == 2 else None
    result = {}
    for name, t in x.items():
        a = t.detach().numpy()
        if kinds[name] == "rgb":
            result[name] = np.ascontiguousarray(a.transpose(0, 2, 3, 1))
        else:
            fr = R.flow_frames(torch.from_numpy(a), pre.flow_layout).numpy()  # (B, L, 2, H, W)
            result[name] = np.ascontiguousarray(fr.transpose(0, 1, 3, 4, 2)) * float(pre.flow_scale)
    return Rendered(result, final, probs, history, weights, list(inputs.seeds))
