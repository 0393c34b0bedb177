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


# Figures are one canvas: every panel is upscaled (nearest, an integer factor) into one RGB
# array, drawn by a single imshow on an axes that fills the figure, with the panel titles, row
# labels and the title as text at fixed pixel positions. One draw per figure (savefig): no
# axes per panel and no tight_layout, which drew the whole figure once more to measure it.
DPI = 80
PANEL_PX = 112  # panels are upscaled to at least this many pixels on their longer side
CAPTION_PX = 24  # two lines of 7 pt text above each panel
LABEL_PX = 18  # the row labels' column (rotated text)
TITLE_PX = 22  # the figure title
GAP_PX = 8


def _map_colour(a: np.ndarray, m: float) -> np.ndarray:
    """A signed map (H, W) -> RGB in [0, 1] on RdBu_r over [-m, m] (red = positive)."""
    from matplotlib import colormaps  # deferred: matplotlib is slow to import; only the figures need it

    return colormaps["RdBu_r"](np.clip((np.asarray(a, np.float64) + m) / (2 * m), 0, 1))[..., :3]


def _canvas_figure(path: Path, title: str, rows: Sequence[Sequence[tuple[np.ndarray | None, str]]],
                   row_labels: Sequence[str], label_size: int = 7) -> None:
    """Write one figure of panels: ``rows`` of (RGB image (h, w, 3) in [0, 1] or None, caption)."""
    import matplotlib  # deferred: matplotlib is slow to import; only the figures need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred: matplotlib is slow to import; only the figures need it

    imgs = [img for row in rows for img, _ in row if img is not None]
    h = max((i.shape[0] for i in imgs), default=16)
    w = max((i.shape[1] for i in imgs), default=16)
    k = max(1, int(np.ceil(PANEL_PX / max(h, w))))
    ph, pw = h * k, w * k
    cw, ch = pw + GAP_PX, CAPTION_PX + ph + GAP_PX
    n_cols = max((len(r) for r in rows), default=1) or 1
    W, H = LABEL_PX + n_cols * cw, TITLE_PX + len(rows) * ch
    canvas = np.ones((H, W, 3))
    texts = []
    for r, row in enumerate(rows):
        y0 = TITLE_PX + r * ch + CAPTION_PX
        for c, (img, caption) in enumerate(row):
            x0 = LABEL_PX + c * cw + GAP_PX // 2
            if img is not None:
                up = np.repeat(np.repeat(np.clip(np.asarray(img, np.float64), 0, 1), k, 0), k, 1)
                canvas[y0 - 1 : y0 + up.shape[0] + 1, x0 - 1 : x0 + up.shape[1] + 1] = 0.0  # a 1 px frame
                canvas[y0 : y0 + up.shape[0], x0 : x0 + up.shape[1]] = up
            if caption:
                texts.append((x0 + pw / 2, y0 - 2, caption))
    fig = plt.figure(figsize=(W / DPI, H / DPI), dpi=DPI)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(canvas, interpolation="nearest", extent=(-0.5, W - 0.5, H - 0.5, -0.5))
    ax.set_xlim(-0.5, W - 0.5)
    ax.set_ylim(H - 0.5, -0.5)
    ax.set_axis_off()
    for x, y, t in texts:
        ax.text(x, y, t, ha="center", va="bottom", fontsize=7, linespacing=1.1)
    for r, label in enumerate(row_labels):
        ax.text(LABEL_PX / 2, TITLE_PX + r * ch + CAPTION_PX + ph / 2, label, ha="center", va="center",
                rotation=90, fontsize=label_size)
    ax.text(W / 2, TITLE_PX / 2, title, ha="center", va="center", fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)


def _flow_panels(flow: np.ndarray, title: str) -> list[tuple[np.ndarray, str]]:
    """The colour wheel, x and y panels of a flow stack (L, H, W, 2): its mean over the fields."""
    mean = flow.mean(0)
    m = float(np.abs(mean).max()) or 1.0
    mag = float(np.hypot(mean[..., 0], mean[..., 1]).max())
    wheel = (flow_to_colour(flow), f"{title}\nmax {mag:.2f} px/f, rel.var {relative_temporal_variation(flow):.2f}")
    return [wheel, (_map_colour(mean[..., 0], m), "x"), (_map_colour(mean[..., 1], m), "y")]


def layer_figure(path: str | Path, title: str, row_labels: Sequence[str], rgb: np.ndarray | None,
                 flow: np.ndarray | None, temporal_weights: Sequence[float]) -> None:
    """One row per unit: [appearance] + [flow wheel, x, y] per temporal weight.

    ``rgb``: (U, S, H, W, 3) or None; ``flow``: (U, S, L, H, W, 2) or None, S = len(temporal_weights).
    """
    speeds = list(temporal_weights) if flow is not None else [None]
    rows = []
    for u in range(len(row_labels)):
        row = []
        if rgb is not None:
            row.append((rgb[u, -1], "appearance"))  # the image at the slowest setting
        if flow is not None:
            for s, w in enumerate(speeds):
                row += _flow_panels(flow[u, s], _speed_name(w, speeds))
        rows.append(row)
    _canvas_figure(Path(path), title, rows, row_labels)


def overview_figure(path: str | Path, title: str, layers: Sequence[str], units: Sequence[Sequence[int]],
                    rgb: Sequence[np.ndarray | None], flow: Sequence[np.ndarray | None]) -> None:
    """One row per layer; per unit the appearance (if any) and the slowest-setting flow wheel (if any).

    ``rgb[i]``: (U, S, H, W, 3) or None; ``flow[i]``: (U, S, L, H, W, 2) or None.
    """
    rows = []
    for i in range(len(layers)):
        row = []
        for j, unit in enumerate(units[i]):
            if rgb[i] is not None:
                row.append((rgb[i][j, -1], f"#{unit}"))
            if flow[i] is not None:
                row.append((flow_to_colour(flow[i][j, -1]), f"#{unit} motion"))
        rows.append(row)
    _canvas_figure(Path(path), title, rows, layers, label_size=8)
