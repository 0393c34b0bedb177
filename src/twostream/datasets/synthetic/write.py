"""Writing the synthetic dataset (``twostream synth``): video encoding, split files, ``classes.csv``.

The dataset is written in the UCF101 on-disk layout::

    <root>/<ClassName>/v_<ClassName>_gXX_cYY.avi   encoded video (XVID/MPEG-4 in .avi, OpenCV VideoWriter)
    <root>/classInd.txt                            "1 ClassName" (1-based, as UCF101)
    <root>/trainlist01.txt                         "ClassName/v_ClassName_g11_c01.avi 1"
    <root>/vallist01.txt                           "ClassName/v_ClassName_g08_c01.avi 1" (trainlist format)
    <root>/testlist01.txt                          "ClassName/v_ClassName_g01_c01.avi"
    <root>/classes.csv                             label (0-based), class_name, group and generating factors
    <root>/videos.csv                              one row per clip: video_id, path, label, class_name,
                                                   split, group, clip, seed

(groups and seeds: :mod:`twostream.datasets.synthetic.classes`).

Codec leak
----------
OpenCV's FFmpeg writer takes no bitrate or key-frame options (``VIDEOWRITER_PROP_QUALITY`` is rejected,
``VIDEOWRITER_PROP_KEY_INTERVAL`` is ignored, ``OPENCV_FFMPEG_WRITER_OPTIONS`` is not passed to the
encoder): it fixes the GOP at 12 frames and the bitrate at about 1.5 bit/pixel.  At that rate an
MPEG-4 P-frame codes a disc whose motion differs from the background's (one vector per 16x16
macroblock) with less texture contrast than a disc that moves with the background.  With a still
background and a still disc (the prototype's design) a single-frame probe told the moving disc from
the still one in about 70-83% of P-frames (a tiny CNN on whole decoded frames: 81%); a camera that
moves background and discs together leaves the same leak (55%).  The background therefore shakes
independently of the discs (about 1.4 x background_jitter px from frame to frame; 0.7 px at the default 0.5), so *both* discs move relative to it and
the codec treats them alike; the same probe then stays at 51 +- 1.5% (the CNN: 49-51%), see
``tests/test_synthetic.py::test_codec_leak_probe``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from ...config import add_params_arguments, section_from_args
from ...errors import InputError
from ...progress import progress as progress_bar
from .classes import SyntheticConfig, class_table, make_config, video_table
from .render import render_clip


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, fourcc: str = "XVID") -> None:
    """Encode uint8 RGB frames (T, H, W, 3) with OpenCV's VideoWriter."""
    import cv2  # deferred: OpenCV is slow to import; only encoding videos needs it

    T, H, W, _ = frames.shape
    w = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), float(fps), (W, H))
    if not w.isOpened():
        raise InputError(f"{path}: OpenCV cannot open a {fourcc} video writer (FFmpeg backend)")
    try:
        for f in frames:
            w.write(np.ascontiguousarray(f[:, :, ::-1]))
    finally:
        w.release()


def _write_text(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def _write_clips(cfg: SyntheticConfig, folder: str, rows: list[tuple[str, int, int]]) -> int:
    """Render and encode clips ``(path, label, seed)`` under ``folder`` (one worker's share)."""
    classes = class_table(cfg)
    for path, label, seed in rows:
        write_video(Path(folder) / path, render_clip(cfg, label, seed, classes).frames, cfg.fps, cfg.fourcc)
    return len(rows)


def generate(cfg: SyntheticConfig, root: str | os.PathLike, progress: bool = True, workers: int = 1) -> pd.DataFrame:
    """Write the whole dataset under ``root`` and return the video table (as in ``videos.csv``).

    Atomic: everything is written into a hidden sibling folder that replaces ``root`` only when
    complete, so an interrupted run never leaves a complete-looking dataset.  ``workers`` processes
    render and encode in parallel; the output does not depend on it.
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    from ...store import temp_path  # deferred: store imports h5py; the renderer (used by findings) needs none

    tmp = temp_path(root)  # the same for every run: a rerun removes what a killed run left
    old = root.with_name(f".{root.name}.old")
    for leftover in (tmp, old):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        elif leftover.exists() or leftover.is_symlink():
            leftover.unlink()
    tmp.mkdir()
    try:
        classes = class_table(cfg)
        videos = video_table(cfg)
        for name in classes.class_name:
            (tmp / name).mkdir()
        jobs = list(zip(videos.path, videos.label.astype(int), videos.seed.astype(int)))
        chunk = 32
        chunks = [jobs[i:i + chunk] for i in range(0, len(jobs), chunk)]
        bar = progress_bar(total=len(jobs), desc="synth", unit="clip", disable=not progress, file=sys.stderr,
                   mininterval=2.0)
        if workers <= 1:
            for c in chunks:
                bar.update(_write_clips(cfg, str(tmp), c))
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                for n in ex.map(_write_clips, [cfg] * len(chunks), [str(tmp)] * len(chunks), chunks):
                    bar.update(n)
        bar.close()
        classes.to_csv(tmp / "classes.csv", index=False)
        videos.to_csv(tmp / "videos.csv", index=False)
        _write_text(tmp / "classInd.txt", [f"{lab + 1} {n}" for lab, n in zip(classes.label, classes.class_name)])
        tr, va, te = (videos[videos.split == s] for s in ("train", "val", "test"))
        _write_text(tmp / "trainlist01.txt", [f"{p} {lab + 1}" for p, lab in zip(tr.path, tr.label)])
        _write_text(tmp / "vallist01.txt", [f"{p} {lab + 1}" for p, lab in zip(va.path, va.label)])
        _write_text(tmp / "testlist01.txt", list(te.path))
        # swap in: the final name only ever holds a complete dataset
        moved = root.exists() or root.is_symlink()
        if moved:
            os.replace(root, old)
        os.replace(tmp, root)
        if moved:
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() and not old.is_symlink() else old.unlink()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return videos


# --------------------------------------------------------------------------- CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_params_arguments(p)
    p.add_argument("--out", required=True, help="dataset root to write (UCF101 layout)")
    p.add_argument("--threads", type=int, default=1, help="worker processes (the output does not depend on it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    cfg = make_config(section_from_args(args, "synthetic"))
    t0 = time.perf_counter()
    videos = generate(cfg, args.out, progress=not args.no_progress, workers=args.threads)
    dt = time.perf_counter() - t0
    n_frames = len(videos) * cfg.frames
    n = videos.split.value_counts()
    print(f"synth: {len(videos)} videos ({n.get('train', 0)} train, {n.get('val', 0)} val, "
          f"{n.get('test', 0)} test), {n_frames} frames, {videos.label.nunique()} classes "
          f"-> {args.out} in {dt:.1f} s", file=sys.stderr)
    return 0
