"""Optical flow as pictures: the Middlebury-style colour wheel and x/y maps.

``flow_to_rgb`` maps direction to hue and magnitude to saturation (white = no
motion): rightward motion is red, leftward cyan, downward (image y grows down)
yellow-green, upward blue-violet; the same convention as Baker et al.'s colour
wheel and most flow tools.
"""

from __future__ import annotations

import numpy as np


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """(H, W, 2) flow in px/frame -> (H, W, 3) uint8 RGB.

    Hue is the direction (0° = rightward = red, 180° = leftward = cyan), saturation
    the magnitude relative to ``max_magnitude`` (default: the field's 99th percentile).
    """
    import cv2

    flow = np.asarray(flow, dtype=np.float32)
    if flow.ndim != 3 or flow.shape[-1] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    fx, fy = flow[..., 0], flow[..., 1]
    mag = np.hypot(fx, fy)
    if max_magnitude is None:
        max_magnitude = float(np.percentile(mag, 99)) if mag.size else 1.0
    max_magnitude = max(max_magnitude, 1e-6)
    ang = (np.degrees(np.arctan2(fy, fx)) % 360.0).astype(np.float32)
    hsv = np.zeros(flow.shape[:2] + (3,), np.float32)
    hsv[..., 0] = ang  # OpenCV float HSV: H in [0, 360)
    hsv[..., 1] = np.clip(mag / max_magnitude, 0, 1)
    hsv[..., 2] = 1.0
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)
