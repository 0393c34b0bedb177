"""Settings of the flow stage: TV-L1 parameters (OpenCV's defaults), DIS, storage."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..config import ConfigError

BACKENDS = ("opencv", "torch", "dis")
STORAGES = ("uint8", "float16")
LAYOUTS = ("auto", "fixed", "png")


@dataclass
class TVL1Params:
    """Parameters of duality-based TV-L1 (Zach, Pock, Bischof 2007; Wedel et al. 2009).

    Names and defaults follow OpenCV's ``cv2.optflow.DualTVL1OpticalFlow`` (CPU):
    the ``lambda`` weight is spelled ``lambda_`` as in OpenCV's Python binding.
    """

    tau: float = 0.25  # time step of the dual update
    lambda_: float = 0.15  # weight of the data term (smaller = smoother)
    theta: float = 0.3  # coupling of u and v
    nscales: int = 5  # pyramid levels (fewer if a level would fall under 16 px)
    warps: int = 5  # warpings per level
    epsilon: float = 0.01  # stopping threshold (RMS change of u per pixel)
    inner_iterations: int = 30
    outer_iterations: int = 10
    scale_step: float = 0.8  # downscale factor between pyramid levels
    median_filtering: int = 5  # median filter size applied to u before each outer iteration (1 = off)

    def validate(self, where: str = "flow.tvl1") -> "TVL1Params":
        checks = [
            ("tau", self.tau > 0),
            ("lambda_", self.lambda_ > 0),
            ("theta", self.theta > 0),
            ("nscales", isinstance(self.nscales, int) and self.nscales >= 1),
            ("warps", isinstance(self.warps, int) and self.warps >= 1),
            ("epsilon", self.epsilon >= 0),
            ("inner_iterations", isinstance(self.inner_iterations, int) and self.inner_iterations >= 1),
            ("outer_iterations", isinstance(self.outer_iterations, int) and self.outer_iterations >= 1),
            ("scale_step", 0 < self.scale_step < 1),
            # cv2.medianBlur on float images supports only 3 and 5 (1 turns filtering off)
            ("median_filtering", self.median_filtering in (1, 3, 5)),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"{where}.{name}: invalid value {getattr(self, name)!r}")
        return self


@dataclass
class DISParams:
    """OpenCV's DIS optical flow (``cv2.DISOpticalFlow``)."""

    preset: str = "medium"  # ultrafast | fast | medium

    def validate(self, where: str = "flow.dis") -> "DISParams":
        if self.preset not in ("ultrafast", "fast", "medium"):
            raise ConfigError(f"{where}.preset: must be ultrafast, fast or medium, got {self.preset!r}")
        return self


@dataclass
class FlowConfig:
    """The ``flow:`` section of the config."""

    backend: str = "torch"  # opencv | torch | dis
    device: str = "auto"  # torch backend: auto (cuda if present) | cpu | cuda | cuda:N
    batch_size: int = 64  # torch backend: frame pairs solved together
    stopping: str = "opencv"  # torch backend: opencv (per-pair epsilon test, as OpenCV) | fixed (all iterations)
    compile: bool = True  # torch backend: torch.compile the inner iteration (warm-up ~10-20 s per process)
    bound: float = 20.0  # flow is clipped to +-bound pixels/frame before storage
    storage: str = "uint8"  # uint8 (quantized, 128 = zero, rounding) | float16
    layout: str = "auto"  # auto (fixed when the shard has one frame size, else png) | fixed | png
    tvl1: TVL1Params = field(default_factory=TVL1Params)
    dis: DISParams = field(default_factory=DISParams)

    def validate(self) -> "FlowConfig":
        if self.backend not in BACKENDS:
            raise ConfigError(f"flow.backend: must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.storage not in STORAGES:
            raise ConfigError(f"flow.storage: must be one of {', '.join(STORAGES)}, got {self.storage!r}")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"flow.layout: must be one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.stopping not in ("opencv", "fixed"):
            raise ConfigError(f"flow.stopping: must be opencv or fixed, got {self.stopping!r}")
        if not (isinstance(self.batch_size, int) and self.batch_size >= 1):
            raise ConfigError(f"flow.batch_size: must be a positive integer, got {self.batch_size!r}")
        if not (self.bound > 0):
            raise ConfigError(f"flow.bound: must be positive, got {self.bound!r}")
        if not isinstance(self.compile, bool):
            raise ConfigError(f"flow.compile: must be true or false, got {self.compile!r}")
        if not (self.device == "auto" or self.device == "cpu" or str(self.device).startswith("cuda")):
            raise ConfigError(f"flow.device: must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        self.tvl1.validate()
        self.dis.validate()
        return self
