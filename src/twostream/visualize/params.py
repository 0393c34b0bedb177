"""Input parametrisations for activation maximisation.

An input is a learnable tensor in an unconstrained space plus a map to the value
the network sees. Two spaces: ``pixel`` (one number per pixel) and ``fourier``
(a decorrelated spectrum whose high frequencies are scaled down, as in lucid /
lucent). Two kinds of input:

* ``rgb``: an appearance image, squashed through a sigmoid into [0, 1] (then the
  network's own normalisation is applied by the caller);
* ``flow``: a stack of flow fields, unbounded, in the network's input units
  (its magnitude is held by the L2 penalty, not by a squashing function).

All inputs carry a batch dimension, so several independent visualizations
(seeds, units, penalty settings) are optimised in one pass; each sample is
initialised from its own seed, so a sample does not depend on its batch-mates'
initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError

PARAMETRIZATIONS = ("pixel", "fourier")
KINDS = ("rgb", "flow")


def _seeded_normal(shape: tuple[int, ...], seeds: list[int], sd: float) -> torch.Tensor:
    """(B, *shape) normal noise, sample b drawn from ``torch.Generator().manual_seed(seeds[b])``."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed(int(s))
        out.append(torch.randn(shape, generator=g) * sd)
    return torch.stack(out)


def _freqs(h: int, w: int) -> torch.Tensor:
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


class Input(torch.nn.Module):
    """One learnable input of shape (B, C, H, W).

    ``forward()`` returns the value fed to the network (after sigmoid for ``rgb``);
    ``scale`` multiplies the flow value (network units per unit of the parameter).
    """

    def __init__(
        self,
        kind: str,
        channels: int,
        size: tuple[int, int],
        seeds: list[int],
        parametrization: str = "pixel",
        sd: float = 0.01,
        decay_power: float = 1.0,
    ):
        super().__init__()
        if kind not in KINDS:
            raise InputError(f"input kind {kind!r} is not one of {KINDS}")
        if parametrization not in PARAMETRIZATIONS:
            raise InputError(f"parametrization {parametrization!r} is not one of {PARAMETRIZATIONS}")
        h, w = int(size[0]), int(size[1])
        if h < 2 or w < 2 or channels < 1 or not seeds:
            raise InputError(f"bad input shape: channels={channels}, size={size}, batch={len(seeds)}")
        self.kind, self.channels, self.size = kind, int(channels), (h, w)
        self.parametrization = parametrization
        if parametrization == "pixel":
            self.param = torch.nn.Parameter(_seeded_normal((channels, h, w), seeds, sd))
        else:
            wf = w // 2 + 1
            self.param = torch.nn.Parameter(_seeded_normal((channels, h, wf, 2), seeds, sd))
            f = _freqs(h, w)
            scale = 1.0 / torch.clamp(f, min=1.0 / max(h, w)) ** decay_power
            # normalise (with the orthonormal FFT) so pixels have about the spectrum's spread
            scale = scale / scale.square().mean().sqrt()
            self.register_buffer("spectrum_scale", scale[None, None, :, :, None])

    @property
    def batch(self) -> int:
        return int(self.param.shape[0])

    def raw(self) -> torch.Tensor:
        """The unconstrained value in pixel space (B, C, H, W)."""
        if self.parametrization == "pixel":
            return self.param
        spec = torch.view_as_complex((self.param * self.spectrum_scale).contiguous())
        h, w = self.size
        return torch.fft.irfft2(spec, s=(h, w), norm="ortho")

    def forward(self) -> torch.Tensor:
        x = self.raw()
        if self.kind == "rgb":
            return torch.sigmoid(x)
        return x


@dataclass
class InputSpec:
    """What a model takes: input name -> (kind, channels), in call order."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    channels: tuple[int, ...]

    @classmethod
    def two_stream(cls, flow_frames: int) -> "InputSpec":
        return cls(("rgb", "flow"), ("rgb", "flow"), (3, 2 * int(flow_frames)))

    @classmethod
    def rgb(cls) -> "InputSpec":
        return cls(("rgb",), ("rgb",), (3,))

    @classmethod
    def flow(cls, flow_frames: int) -> "InputSpec":
        return cls(("flow",), ("flow",), (2 * int(flow_frames),))


class InputSet(torch.nn.Module):
    """The learnable inputs of one batched visualization: ``forward()`` -> {name: tensor}."""

    def __init__(
        self,
        spec: InputSpec,
        size: tuple[int, int],
        seeds: list[int],
        parametrization: str = "pixel",
        sd: float = 0.01,
        decay_power: float = 1.0,
    ):
        super().__init__()
        self.spec = spec
        self.seeds = [int(x) for x in seeds]
        self.inputs = torch.nn.ModuleDict()
        for i, (name, kind, ch) in enumerate(zip(spec.names, spec.kinds, spec.channels)):
            # a different stream of noise for each input of the same sample
            s = [int(x) * 1009 + i for x in seeds]
            self.inputs[name] = Input(kind, ch, size, s, parametrization, sd, decay_power)

    def forward(self) -> dict[str, torch.Tensor]:
        return {name: inp() for name, inp in self.inputs.items()}
