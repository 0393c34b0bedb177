"""Probe clips: synthetic clips that vary one factor of the main object at a time.

A probe clip is ``render_clip(cfg, label, seed)`` with object 0 (the class's moving object)
edited by :class:`ProbeFactors` before drawing: everything else -- the other objects, the
background, its shake, the noise -- is that of ``seed``, so the clips of one (class, seed)
differ in the probed factor only. The factors:

``speed``
    multiplies object 0's translation velocity (px/frame); its path keeps its middle-frame
    position, so speed 0 holds it still there;
``centre``
    the position of object 0 at the middle frame, (x, y) as fractions of the frame side (a still
    disc moves with it);
``radius``
    multiplies object 0's radius (every frame);
``phase``
    the texture phase of object 0 along its x axis (0 along y), as a fraction of
    ``texture_period`` (a shift of both axes by half a period would leave the checker unchanged);
``colour``
    object 0's RGB colour.

Model inputs of a probe clip (:func:`clip_inputs`) are one snippet at the middle of the clip,
built as the data pipeline builds a test snippet: the RGB frame in the middle of the flow
stack, scaled to [0, 1], and the ground-truth flow of the renderer (px/frame, clipped to the
flow stage's ``bound`` and quantized as it stores flow), channels x0, y0, x1, y1, ...

Probes file (``results/findings/probes.h5``, rule ``findings_probes``; written once per run by
``twostream findings --render-probes``, read by every ``findings_model`` job through
``readers.read_probes``), ``kind = findings_probes``, ``layout_version`` 1::

    /index        (N, 3) int32: probe set (position in ``probe_plan``), class label, level of each clip
    /frames       (N, F, H, W, 3) uint8 RGB: the clip's frames /frame_index, one clip per chunk, lzf
    /frame_index  (F,) int32: frame numbers in the clip (the middle snippet's frame of each stream's
                  flow length L, with and without flow inputs: ``snippet_frames``)
    /flow         (N, K, H, W, 2) uint8: the renderer's flow fields /field_index, clipped to +-bound
                  and quantized as the flow stage stores flow (``store.quantize_flow``), one clip per chunk, lzf
    /field_index  (K,) int32: field numbers in the clip (field t: frame t -> t + 1)
    attrs:        layout_version, kind, params (JSON: ``findings`` probe keys, ``synthetic``,
                  ``flow_length``, ``bound``), versions (JSON), bound, n_frames, sets (JSON: factor,
                  levels, labels of each probe set)

A job's inputs are ``snippet_inputs`` of the stored frame and fields of its model's snippet:
exactly ``clip_inputs`` of the rendered clip (the frames are the renderer's uint8, and
``clip_inputs`` quantizes the flow as stored), so the clips are rendered once per run, not once
per job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..data import apply_crop, eval_crop_boxes, snippet_indices, upscale_to
from ..datasets import synthetic as S
from ..readers import PROBES_KIND
from ..store import atomic_h5, create_dataset, dequantize_flow, quantize_flow, write_provenance


@dataclass(frozen=True)
class ProbeFactors:
    """Edits of object 0 of a clip (None / 1.0: leave as planned)."""

    speed: float = 1.0
    centre: tuple[float, float] | None = None
    radius: float = 1.0
    phase: float | None = None
    colour: tuple[int, int, int] | None = None

    def __call__(self, objs: list, cfg: S.SyntheticConfig) -> None:
        o = objs[0]
        size = cfg.size
        T = len(o.centres)
        # unwrapped path on the torus, then its middle-frame position (paths are linear in t)
        steps = S._wrap(np.diff(o.centres, axis=0), size)
        path = o.centres[0] + np.concatenate([np.zeros((1, 2)), np.cumsum(steps, 0)])
        t = np.arange(T, dtype=float)[:, None]
        tmid = (T - 1) / 2.0
        v = steps.mean(0) if T > 1 else np.zeros(2)
        mid = path[0] + v * tmid
        if self.centre is not None:  # the still disc (spatiotemporal classes) keeps its place relative to it
            shift = np.asarray(self.centre, float) * size - mid
            mid = mid + shift
            for other in objs[1:]:
                if other.kind == "still":
                    other.centres = (other.centres + shift) % size
        o.centres = (mid + float(self.speed) * v * (t - tmid)) % size
        o.radii = o.radii * float(self.radius)
        if self.phase is not None:
            o.phase = np.array([float(self.phase) * cfg.texture_period, 0.0])
        if self.colour is not None:
            o.colour = tuple(int(c) for c in self.colour)


def render_probe(cfg: S.SyntheticConfig, label: int, seed: int, factors: ProbeFactors,
                 classes: pd.DataFrame | None = None) -> S.Clip:
    return S.render_clip(cfg, label, seed, classes, adjust=factors)


def middle_snippet(n_frames: int, flow_length: int) -> int:
    """Position (first flow field) of the snippet in the middle of a clip of ``n_frames``."""
    return max(0, (int(n_frames) - 1 - int(flow_length)) // 2)


def snippet_frames(n_frames: int, flow_length: int, use_flow: bool) -> tuple[int, np.ndarray]:
    """(RGB frame, flow fields) of the middle snippet of a clip of ``n_frames``, as the data
    pipeline picks them (``data.snippet_indices``): a model with flow inputs sees the frame in the
    middle of its flow stack, an appearance stream the snippet's first frame."""
    T = int(n_frames)
    return snippet_indices(middle_snippet(T, flow_length), T, T - 1, int(flow_length), bool(use_flow))


def snippet_inputs(rgb: np.ndarray | None, flow: np.ndarray | None, modalities: Sequence[str], crop_size: int,
                   bound: float = 20.0) -> dict[str, torch.Tensor]:
    """Model inputs of snippets: ``rgb`` (N, H, W, 3) uint8 frames, ``flow`` (N, L, H, W, 2) uint8
    fields quantized as the flow stage stores them (``store.quantize_flow``, +-``bound``) ->
    {"rgb": (N, 3, S, S) in [0, 1], "flow": (N, 2L, S, S) px/frame, channels x0, y0, x1, y1, ...}."""
    out = {}
    for m in modalities:
        if m == "rgb":
            imgs = np.asarray(rgb)
        else:
            fl = dequantize_flow(np.asarray(flow), bound)  # (N, L, H, W, 2)
            N, L, H, W, _ = fl.shape
            imgs = fl.transpose(0, 2, 3, 1, 4).reshape(N, H, W, 2 * L)
        crops = []
        for img in imgs:
            img = upscale_to(img, crop_size, m == "flow")
            box = eval_crop_boxes(img.shape[0], img.shape[1], crop_size, 1)[0]
            crops.append(apply_crop(img, box, crop_size, m == "flow"))
        x = torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2))).float()
        out[m] = x / 255.0 if m == "rgb" else x
    return out


def clip_inputs(clip: S.Clip, modalities: Sequence[str], flow_length: int, crop_size: int,
                bound: float = 20.0) -> dict[str, torch.Tensor]:
    """The middle snippet of a probe clip as model inputs: {"rgb": (3, S, S), "flow": (2L, S, S)}."""
    frame, fields = snippet_frames(len(clip.frames), flow_length, "flow" in modalities)
    rgb = clip.frames[frame][None] if "rgb" in modalities else None
    flow = quantize_flow(clip.truth.flow[fields], bound)[None] if "flow" in modalities else None
    return {m: v[0] for m, v in snippet_inputs(rgb, flow, modalities, crop_size, bound).items()}


# --------------------------------------------------------------------------- probe plan


@dataclass
class ProbeSet:
    """The probe clips of one factor: every (class, level) pair over ``seeds``."""

    factor: str
    levels: list[float | str]
    labels: list[int]
    factors: list[ProbeFactors]  # one per level


def probe_plan(classes: pd.DataFrame, cfg: S.SyntheticConfig, speeds: Sequence[float],
               positions: Sequence[float], sizes: Sequence[float], phases: Sequence[float],
               colours: Sequence[str]) -> list[ProbeSet]:
    """The probe sets of the synthetic classes (``classes.csv`` rows). Object 0 passes the frame
    centre at the middle frame in every set but ``position``, so a unit read at the centre of its
    map (``findings.where: center``) sees it.

    - ``base``: every class as planned (the denominator of the invariance index);
    - ``speed``: translating motion classes whose direction has no fast class (e.g. left, up,
      down) -- speed tells none of them from another class;
    - ``speed_<dir>``: the slow class of a direction that has a fast class (MotionRight beside
      MotionRightFast) -- speed is what tells it apart;
    - ``position``: every class, object 0 centred at (p, p) of the frame for p in ``positions``;
    - ``size``, ``phase``: every class;
    - ``colour``: the motion classes (grey object), recoloured.
    """
    c = classes.copy()
    c["speed"] = pd.to_numeric(c["speed"], errors="coerce").fillna(0.0)
    motion = c[c.group == "motion"]
    trans = motion[(motion.motion == "translate") & (motion.speed > 0)]
    base_speed = trans.speed.min() if len(trans) else 0.0
    fast_dirs = sorted(set(trans[trans.speed > base_speed + 1e-9].direction))
    slow = trans[trans.speed <= base_speed + 1e-9]
    all_labels = [int(x) for x in c.label]
    mid = (0.5, 0.5)
    sets = [ProbeSet("base", ["centred"], all_labels, [ProbeFactors(centre=mid)])]
    generic = [int(x) for x in slow[~slow.direction.isin(fast_dirs)].label]
    if generic and speeds:
        sets.append(ProbeSet("speed", list(speeds), generic, [ProbeFactors(speed=float(s), centre=mid) for s in speeds]))
    for d in fast_dirs:
        lab = [int(x) for x in slow[slow.direction == d].label]
        if lab and speeds:
            sets.append(ProbeSet(f"speed_{d}", list(speeds), lab, [ProbeFactors(speed=float(s), centre=mid) for s in speeds]))
    if positions:
        sets.append(ProbeSet("position", list(positions), all_labels,
                             [ProbeFactors(centre=(float(p), float(p))) for p in positions]))
    if sizes:
        sets.append(ProbeSet("size", list(sizes), all_labels, [ProbeFactors(radius=float(r), centre=mid) for r in sizes]))
    if phases:
        sets.append(ProbeSet("phase", list(phases), all_labels, [ProbeFactors(phase=float(p), centre=mid) for p in phases]))
    mot = [int(x) for x in motion.label]
    if colours and mot:
        sets.append(ProbeSet("colour", list(colours), mot,
                             [ProbeFactors(colour=S._colour_rgb(n), centre=mid) for n in colours]))
    return sets


def write_probes(path, frames: np.ndarray, frame_index, flow: np.ndarray, field_index, index: np.ndarray,
                 sets: list[ProbeSet], params: dict, bound: float, n_frames: int) -> None:
    """Write the probes file (layout in the module docstring), atomically."""
    import json

    with atomic_h5(path) as f:
        create_dataset(f, "index", data=np.asarray(index, np.int32))
        create_dataset(f, "frames", data=frames, chunks=(1,) + frames.shape[1:], compression="lzf")
        create_dataset(f, "frame_index", data=np.asarray(frame_index, np.int32))
        create_dataset(f, "flow", data=flow, chunks=(1,) + flow.shape[1:], compression="lzf")
        create_dataset(f, "field_index", data=np.asarray(field_index, np.int32))
        plan = [{"factor": s.factor, "levels": list(s.levels), "labels": list(s.labels)} for s in sets]
        write_provenance(f, PROBES_KIND, params, bound=float(bound), n_frames=int(n_frames),
                         sets=json.dumps(plan, default=str))
