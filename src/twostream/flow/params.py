"""Settings of the flow stage: TV-L1 parameters, DIS, storage (defaults: the config schema)."""

from __future__ import annotations

from ..config import settings

BACKENDS = ("opencv", "torch", "dis")
STORAGES = ("uint8", "float16")
LAYOUTS = ("auto", "fixed", "png")


@settings("flow.tvl1")
class TVL1Params:
    """Parameters of duality-based TV-L1 (Zach, Pock, Bischof 2007; Wedel et al. 2009).

    Names follow OpenCV's ``cv2.optflow.DualTVL1OpticalFlow`` (CPU): the ``lambda`` weight
    is spelled ``lambda_`` as in OpenCV's Python binding. The defaults are the schema's
    (``flow.tvl1``: lighter than OpenCV's in four keys); ``opencv_defaults()`` gives OpenCV's own.
    """

    tau: float  # time step of the dual update
    lambda_: float  # weight of the data term (smaller = smoother)
    theta: float  # coupling of u and v
    nscales: int  # pyramid levels (fewer if a level would fall under 16 px)
    warps: int  # warpings per level
    epsilon: float  # stopping threshold (RMS change of u per pixel)
    inner_iterations: int
    outer_iterations: int
    scale_step: float  # downscale factor between pyramid levels
    median_filtering: int  # median filter size applied to u before each outer iteration (1 = off)



@settings("flow.dis")
class DISParams:
    """OpenCV's DIS optical flow (``cv2.DISOpticalFlow``)."""

    preset: str  # ultrafast | fast | medium



@settings("flow")
class FlowConfig:
    """The ``flow:`` section of the config."""

    backend: str  # opencv | torch | dis
    device: str  # torch backend: auto (cuda if present) | cpu | cuda | cuda:N
    batch_size: int  # torch backend: frame pairs solved together
    stopping: str  # torch backend: opencv (per-pair epsilon test, as OpenCV) | fixed (all iterations)
    compile: bool  # torch backend: torch.compile the inner iteration (warm-up ~10-20 s per process)
    bound: float  # flow is clipped to +-bound pixels/frame before storage
    storage: str  # uint8 (quantized, 128 = zero, rounding) | float16
    layout: str  # auto (fixed when the shard has one frame size, else png) | fixed | png
    tvl1: TVL1Params
    dis: DISParams


def opencv_defaults() -> TVL1Params:
    """OpenCV's own DualTVL1 defaults, read from cv2 (the reference setting of tests and benches)."""
    import cv2  # deferred: the settings are read without OpenCV (e.g. by the workflow)

    o = cv2.optflow.DualTVL1OpticalFlow_create()
    return TVL1Params(
        tau=o.getTau(), lambda_=o.getLambda(), theta=o.getTheta(), nscales=o.getScalesNumber(),
        warps=o.getWarpingsNumber(), epsilon=o.getEpsilon(), inner_iterations=o.getInnerIterations(),
        outer_iterations=o.getOuterIterations(), scale_step=o.getScaleStep(),
        median_filtering=o.getMedianFiltering(),
    )
