"""Shared test helpers. Each helper section is owned by the stage that added it."""

from __future__ import annotations

import numpy as np
import pytest


# --- videos (decode / datasets tests) -------------------------------------------------------


def make_frames(n: int = 12, height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """Smooth RGB frames (n, H, W, 3) uint8: a colour gradient plus a moving bright square.

    Smooth content keeps lossy-codec error small (a few grey levels), so decoded pixels
    can be compared with these frames.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = rng.uniform(40, 200, size=3)
    out = np.empty((n, height, width, 3), np.uint8)
    for t in range(n):
        f = np.empty((height, width, 3), np.float32)
        f[..., 0] = base[0] + 40 * np.sin(xx / width * 2 * np.pi + t * 0.2)
        f[..., 1] = base[1] + 40 * np.cos(yy / height * 2 * np.pi)
        f[..., 2] = base[2] + 30 * np.sin((xx + yy) / (width + height) * 2 * np.pi)
        s = max(4, min(height, width) // 4)
        x0 = (4 + 2 * t) % (width - s)
        f[height // 3 : height // 3 + s, x0 : x0 + s] = (235, 235, 235)
        out[t] = np.clip(f, 0, 255).astype(np.uint8)
    return out


def write_test_video(path, frames: np.ndarray | None = None, fourcc: str = "XVID", fps: float = 25.0, **kw):
    """Encode ``frames`` (default: make_frames(**kw)) into ``path`` with OpenCV; returns the frames."""
    from twostream.video import write_video

    frames = make_frames(**kw) if frames is None else frames
    write_video(path, frames, fps=fps, fourcc=fourcc)
    return frames


@pytest.fixture
def video_factory(tmp_path):
    """``video_factory(rel, **kw)`` writes tmp_path/rel (XVID by default) and returns the frames."""

    def make(rel: str, **kw):
        return write_test_video(tmp_path / rel, **kw)

    return make
