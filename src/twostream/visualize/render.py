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

``redirect_relu_steps``: for the first that many steps every ReLU of the model passes a
gradient even where its input is negative, for a sample whose ReLU gradient would be
zero, unless the gradient would push that input further down (the idea of Lucid's
``redirected_relu_grad``, which its ``render_vis`` applies for the first 16 steps; our
own code). A unit that is silent on the random start (a ReLU unit below zero everywhere)
otherwise has no gradient at all, and its "visualization" is the start, unchanged.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass, field, fields
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from ..errors import InputError
from ..progress import progress as progress_bar
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
    # the model removes each flow field's spatial mean (camera-motion compensation): a
    # constant added to a field is invisible to it, so the saved flow is centred likewise
    flow_center: bool = False

    def network(self, x: dict[str, torch.Tensor], kinds: dict[str, str]) -> dict[str, torch.Tensor]:
        out = {}
        for name, t in x.items():
            if kinds[name] == "rgb":
                if any(v != 0 for v in self.rgb_mean) or any(v != 1 for v in self.rgb_std):
                    m = torch.as_tensor(self.rgb_mean, dtype=t.dtype).view(1, -1, 1, 1)
                    s = torch.as_tensor(self.rgb_std, dtype=t.dtype).view(1, -1, 1, 1)
                    t = (t - m) / s
            elif float(self.flow_scale) != 1.0:
                t = t * float(self.flow_scale)
            out[name] = t
        return out


# ResNet stage name -> (attribute of the module whose output it is, function applied after)
STAGE_ALIASES: dict[str, tuple[str, Callable[[torch.Tensor], torch.Tensor] | None]] = {
    "conv1": ("bn1", torch.relu),
    "res2": ("layer1", None),
    "res3": ("layer2", None),
    "res4": ("layer3", None),
    "res5": ("layer4", None),
    "pool": ("avgpool", lambda t: torch.flatten(t, 1)),
    "fc": ("fc", None),
}


class _Stop(Exception):
    """Raised by a hook once every asked layer is recorded, to skip the rest of the pass."""


def resolve_layer(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, Callable | None]:
    """The module whose output is layer ``name`` and a function to apply to it.

    ``name`` is a dotted path; its last part may be a ResNet stage name (``conv1``,
    ``res2``..``res5``, ``pool``, ``fc``) of a module that has ``stage_channels``
    (``"res3"`` of a stream, ``"rgb.res4"`` of a fused network), or any submodule path
    (``"fuse"``).
    """
    parent_path, _, last = name.rpartition(".")
    try:
        parent = model.get_submodule(parent_path) if parent_path else model
        if last in STAGE_ALIASES and hasattr(parent, "stage_channels"):
            attr, post = STAGE_ALIASES[last]
            return parent.get_submodule(attr), post
        return model.get_submodule(name), None
    except AttributeError:
        known = [n for n, _ in model.named_children()]
        stages = ", ".join(STAGE_ALIASES)
        raise InputError(
            f"model has no layer {name!r} (stages: {stages}; top-level modules: {', '.join(known)})"
        ) from None


class Probe:
    """Runs a model and returns the activations of named layers (and its output).

    Layers are recorded by forward hooks (see ``resolve_layer``). When the model's
    output is not needed the pass stops as soon as every asked layer is recorded, so
    early layers are cheap. ``OUTPUT`` is the model's return value. The model is called
    as ``model(*[x[m] for m in model.modalities])`` (or in ``names`` order).
    """

    def __init__(self, model: torch.nn.Module, layers: Sequence[str], names: Sequence[str]):
        self.model = model
        self.names = tuple(getattr(model, "modalities", None) or names)
        self.layers = [l for l in dict.fromkeys(layers) if l != OUTPUT]
        self.modules = {name: resolve_layer(model, name) for name in self.layers}

    def __call__(self, x: dict[str, torch.Tensor], output: bool = True) -> dict[str, torch.Tensor]:
        args = [x[n] for n in self.names]
        acts: dict[str, torch.Tensor] = {}
        handles = []
        want = set(self.layers)
        for name, (mod, post) in self.modules.items():

            def hook(_m, _inp, out, name=name, post=post):
                out = out[0] if isinstance(out, (tuple, list)) else out
                acts[name] = post(out) if post is not None else out
                if not output and want <= acts.keys():
                    raise _Stop

            handles.append(mod.register_forward_hook(hook))
        try:
            acts[OUTPUT] = self.model(*args)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        missing = want - acts.keys()
        if missing:
            raise InputError(f"layer(s) {', '.join(sorted(missing))} not computed by this model's forward pass")
        return acts


@dataclass
class Rendered:
    """The result of one batched optimisation (numpy arrays, batch first)."""

    inputs: dict[str, np.ndarray]  # rgb: (B, H, W, 3) in [0,1]; flow: (B, L, H, W, 2) in px/frame
    objective: np.ndarray  # (B,) objective at the final, unshifted input
    logits: np.ndarray | None  # (B, classes) the model's output, if it is a vector
    history: np.ndarray  # (steps, B) objective during optimisation
    weights: Weights
    seeds: list[int]
    extra: dict = field(default_factory=dict)

    @property
    def probabilities(self) -> np.ndarray | None:
        """(B, classes) softmax of the model's output, if it is a vector."""
        if self.logits is None:
            return None
        z = np.exp(self.logits - self.logits.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


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


class _RedirectedReLU(torch.autograd.Function):
    """ReLU forward; backward: the ReLU gradient for a sample where it is not all zero, else
    the incoming gradient except where it would lower an input that is already negative."""

    @staticmethod
    def forward(ctx, x):  # noqa: D102
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, g):  # noqa: D102
        (x,) = ctx.saved_tensors
        relu_g = torch.where(x > 0, g, torch.zeros_like(g))
        # g = d loss / d output; descent moves x by -g: g > 0 at x < 0 pushes x lower
        redirected = torch.where((x < 0) & (g > 0), torch.zeros_like(g), g)
        live = relu_g.reshape(len(g), -1).abs().amax(1) > 0  # per sample (dim 0 is the batch)
        return torch.where(live.view(-1, *[1] * (g.dim() - 1)), relu_g, redirected)


_RELUS = {torch.relu, torch.relu_, F.relu, F.relu_, torch.Tensor.relu, torch.Tensor.relu_}


class redirected_relu(TorchFunctionMode):
    """Inside this context every ReLU (``torch.relu``, ``F.relu``, ``nn.ReLU``, ``Tensor.relu``,
    in-place or not) is ``_RedirectedReLU`` (an in-place call returns a new tensor, which
    every caller here uses)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if func in _RELUS:
            return _RedirectedReLU.apply(args[0])
        return func(*args, **(kwargs or {}))


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
    redirect_relu_steps: int = 0,
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

    def penalty(x: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Per-sample penalty and its gradient w.r.t. each input (computed without autograd)."""
        pen = torch.zeros(b)
        grads = {}
        with torch.no_grad():
            for name, t in x.items():
                if kinds[name] == "rgb":
                    parts = [R.l2_grad(t, w["l2_rgb"], 0.5), R.spatial_tv_grad(t, w["tv_rgb"])]
                else:
                    parts = [R.l2_grad(t, w["l2_flow"]), R.spatial_tv_grad(t, w["tv_flow"]),
                             R.temporal_variation_grad(t, w["temporal"], pre.flow_layout)]
                g = None
                for p, gp in parts:
                    pen = pen + p
                    g = gp if g is None else g.add_(gp)
                grads[name] = g
        return pen, grads

    it = range(steps)
    if progress:
        it = progress_bar(it, desc=objective.name, leave=False, mininterval=2.0, file=sys.stderr)
    with _frozen(model):
        for step in it:
            opt.zero_grad(set_to_none=True)
            x = inputs()
            if jitter > 0:
                dy, dx = (torch.randint(-jitter, jitter + 1, (2,), generator=gen)).tolist()
                xs = {k: _shift(v, dy, dx) for k, v in x.items()}
            else:
                xs = x
            with redirected_relu() if step < redirect_relu_steps else contextlib.nullcontext():
                acts = probe(pre.network(xs, kinds), output=needs_output)
            score = objective(acts)
            _, grads = penalty(x)
            names = list(x)
            torch.autograd.backward([-score.sum()] + [x[n] for n in names], [None] + [grads[n] for n in names])
            opt.step()
            history[step] = score.detach().numpy()
        with torch.no_grad():
            x = inputs()
            acts = probe(pre.network(x, kinds))
            final = objective(acts).numpy()
            out = acts[OUTPUT]
            logits = out.numpy() if out.dim() == 2 else None
    result = {}
    for name, t in x.items():
        a = t.detach().numpy()
        if kinds[name] == "rgb":
            result[name] = np.ascontiguousarray(a.transpose(0, 2, 3, 1))
        else:
            fr = R.flow_frames(torch.from_numpy(a), pre.flow_layout).numpy()  # (B, L, 2, H, W)
            if pre.flow_center:
                fr = fr - fr.mean(axis=(3, 4), keepdims=True)
            result[name] = np.ascontiguousarray(fr.transpose(0, 1, 3, 4, 2)) * float(pre.flow_scale)
    return Rendered(result, final, logits, history, weights, list(inputs.seeds))
