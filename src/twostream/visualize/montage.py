"""PNG figures of optimised inputs (matplotlib, Agg).

* appearance: the optimised RGB image;
* motion: the flow stack's mean over its L fields as a colour-wheel image (hue =
  direction, brightness = magnitude relative to the panel's maximum, printed in the
  title in px/frame) and as x / y maps (red = positive: right / down);
* speeds: one set of motion panels per temporal weight; a high weight gives "slow"
  motion (nearly constant over the L fields), a low one "fast" motion (free to change
  from field to field), shown side by side with the relative temporal variation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..store import atomic_path
from .regularizers import relative_temporal_variation


def flow_to_colour(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """(H, W, 2) or (L, H, W, 2) flow -> (H, W, 3) RGB in [0, 1]: hue = direction, value = magnitude.

    A stack is averaged over its fields first. Hue follows the Middlebury convention
    (right = red, down = yellow-green, left = cyan, up = blue-violet).
    """
    from matplotlib.colors import hsv_to_rgb  # deferred: matplotlib is slow to import; only the figures need it

    f = np.asarray(flow, dtype=np.float64)
    if f.ndim == 4:
        f = f.mean(0)
    mag = np.hypot(f[..., 0], f[..., 1])
    ang = np.arctan2(f[..., 1], f[..., 0])  # y down
    m = float(max_mag if max_mag is not None else mag.max())
    hsv = np.stack([(ang / (2 * np.pi)) % 1.0, np.ones_like(mag), np.clip(mag / m, 0, 1) if m > 0 else mag * 0], -1)
    return hsv_to_rgb(hsv)


def _speed_name(w: float, weights: Sequence[float]) -> str:
    if len(weights) < 2:
        return f"temporal {w:g}"
    if w == max(weights):
        return f"slow (temporal {w:g})"
    if w == min(weights):
        return f"fast (temporal {w:g})"
    return f"temporal {w:g}"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _flow_panels(ax_wheel, ax_x, ax_y, flow: np.ndarray, title: str) -> None:
    mean = flow.mean(0)
    m = float(np.abs(mean).max()) or 1.0
    mag = float(np.hypot(mean[..., 0], mean[..., 1]).max())
    ax_wheel.imshow(flow_to_colour(flow))
    ax_wheel.set_title(f"{title}\nmax {mag:.2f} px/f, rel.var {relative_temporal_variation(flow):.2f}", fontsize=7)
    ax_x.imshow(mean[..., 0], cmap="RdBu_r", vmin=-m, vmax=m)
    ax_x.set_title("x", fontsize=7)
    ax_y.imshow(mean[..., 1], cmap="RdBu_r", vmin=-m, vmax=m)
    ax_y.set_title("y", fontsize=7)


def layer_figure(path: str | Path, title: str, row_labels: Sequence[str], rgb: np.ndarray | None,
                 flow: np.ndarray | None, temporal_weights: Sequence[float]) -> None:
    """One row per unit: [appearance] + [flow wheel, x, y] per temporal weight.

    ``rgb``: (U, S, H, W, 3) or None; ``flow``: (U, S, L, H, W, 2) or None, S = len(temporal_weights).
    """
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    n_units = len(row_labels)
    speeds = list(temporal_weights) if flow is not None else [None]
    cols = (1 if rgb is not None else 0) + (3 * len(speeds) if flow is not None else 0)
    fig, axes = plt.subplots(n_units, cols, figsize=(1.5 * cols, 1.9 * n_units + 0.5), squeeze=False)
    for u in range(n_units):
        c = 0
        if rgb is not None:
            axes[u, 0].imshow(np.clip(rgb[u, -1], 0, 1))  # the image at the slowest setting
            axes[u, 0].set_title("appearance", fontsize=7)
            axes[u, 0].set_ylabel(row_labels[u], fontsize=7)
            c = 1
        if flow is not None:
            for s, w in enumerate(speeds):
                _flow_panels(axes[u, c], axes[u, c + 1], axes[u, c + 2], flow[u, s], _speed_name(w, speeds))
                c += 3
            if rgb is None:
                axes[u, 0].set_ylabel(row_labels[u], fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, Path(path))


def overview_figure(path: str | Path, title: str, layers: Sequence[str], units: Sequence[Sequence[int]],
                    rgb: Sequence[np.ndarray | None], flow: Sequence[np.ndarray | None]) -> None:
    """One row per layer; per unit the appearance (if any) and the slowest-setting flow wheel (if any).

    ``rgb[i]``: (U, S, H, W, 3) or None; ``flow[i]``: (U, S, L, H, W, 2) or None.
    """
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    per_unit = int(any(r is not None for r in rgb)) + int(any(f is not None for f in flow))
    per_unit = max(per_unit, 1)
    n_cols = per_unit * max((len(u) for u in units), default=1)
    fig, axes = plt.subplots(len(layers), n_cols, figsize=(1.3 * n_cols, 1.4 * len(layers) + 0.4), squeeze=False)
    used = np.zeros(axes.shape, bool)
    for i, layer in enumerate(layers):
        used[i, 0] = True
        c = 0
        for j, unit in enumerate(units[i]):
            if rgb[i] is not None:
                axes[i, c].imshow(np.clip(rgb[i][j, -1], 0, 1))
                axes[i, c].set_title(f"#{unit}", fontsize=7)
                used[i, c] = True
                c += 1
            if flow[i] is not None:
                axes[i, c].imshow(flow_to_colour(flow[i][j, -1]))
                axes[i, c].set_title(f"#{unit} motion", fontsize=7)
                used[i, c] = True
                c += 1
        axes[i, 0].set_ylabel(layer, fontsize=8)
    for ax, u in zip(axes.flat, used.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if not u:
            ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, Path(path))
