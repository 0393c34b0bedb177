"""Checks of a whole config before any job runs (the workflow calls them when it loads).

A run on a real collection should not start, or pretend in a dry run that it could,
when the dataset root, the split folder or a split file it needs is missing, or when
it asks for CUDA on a machine without it. ``problems(config)`` lists such problems,
one line each naming the key and the path; ``preflight(config)`` raises the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ConfigError


def dataset_problems(dataset: dict[str, Any]) -> list[str]:
    """Missing folders and split files of a ``dataset:`` section (synthetic: none, it is generated)."""
    kind = dataset.get("kind", "synthetic")
    if kind == "synthetic":
        return []
    root = Path(str(dataset.get("root", "")))
    if not root.is_dir():
        what = "no such folder" if not root.exists() else "not a folder"
        return [f"dataset.root: {root}: {what} (the {kind} videos)"]
    if kind not in ("ucf101", "hmdb51"):
        return []
    key = "dataset.splits_dir" if dataset.get("splits_dir") else "dataset.root"
    sdir = Path(str(dataset.get("splits_dir") or root))
    if not sdir.is_dir():
        return [f"{key}: {sdir}: no such folder (the {kind} split files)"]
    k = int(dataset.get("split", 1))
    if kind == "ucf101":
        need = ["classInd.txt", f"trainlist{k:02d}.txt", f"testlist{k:02d}.txt"]
        return [f"{key}: {sdir / n}: no such split file (dataset.split {k})" for n in need if not (sdir / n).is_file()]
    if not any(sdir.glob(f"*_test_split{k}.txt")):
        return [f"{key}: {sdir}: no <class>_test_split{k}.txt files (dataset.split {k})"]
    return []


def cuda_problems(config: dict[str, Any]) -> list[str]:
    """``flow.device: cuda[:N]`` on a machine where torch sees no such device."""
    flow = config.get("flow") or {}
    device = str(flow.get("device", "auto"))
    if flow.get("backend", "torch") != "torch" or not device.startswith("cuda"):
        return []
    # deferred: torch takes seconds to import; preflight runs at every Snakemake start, torch only for CUDA
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    if index >= n:
        found = f"{n} CUDA device(s)" if n else "no CUDA device"
        return [f"flow.device: {device} is asked for but torch finds {found} (use auto or cpu)"]
    return []


def stale_shards(n_shards: int, results: str | Path = "results") -> list[Path]:
    """Shard files of an earlier, larger ``decode.shards`` (``shard-NNN`` with NNN >= n_shards)
    under ``results/frames`` and ``results/flow``: no rule reads or rewrites them."""
    out = []
    for kind in ("frames", "flow"):
        for p in sorted(Path(results, kind).glob("shard-[0-9][0-9][0-9].*")):
            if int(p.name[6:9]) >= int(n_shards) and p.suffix in (".h5", ".csv"):
                out.append(p)
    return out


def stale_warning(n_shards: int, results: str | Path = "results") -> str:
    """One line naming the stale shard files, or ''."""
    stale = stale_shards(n_shards, results)
    if not stale:
        return ""
    shown = ", ".join(str(p) for p in stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
    return (f"twostream: warning: {shown}: left from an earlier decode.shards (now {int(n_shards)}); "
            "no rule uses them, delete them")


def problems(config: dict[str, Any]) -> list[str]:
    return dataset_problems(config.get("dataset") or {}) + cuda_problems(config)


def preflight(config: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` with the first problem of ``config`` (see module docstring)."""
    found = problems(config)
    if found:
        raise ConfigError(found[0])
