"""Fast backend: OpenCV's DIS optical flow (Kroeger et al. 2016), ~100x faster than TV-L1 on CPU."""

from __future__ import annotations

import cv2
import numpy as np

from .params import DISParams

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class DISFlow:
    """Callable: (prev, next) uint8 grayscale (B, H, W) -> float32 flow (B, H, W, 2)."""

    name = "dis"

    def __init__(self, params: DISParams):
        self.params = params
        self._dis = cv2.DISOpticalFlow_create(PRESETS[params.preset])

    def __call__(self, prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        out = np.empty(prev.shape + (2,), np.float32)
        for i in range(len(prev)):
            out[i] = self._dis.calc(np.ascontiguousarray(prev[i]), np.ascontiguousarray(nxt[i]), None)
        return out
