"""Every CUDA check of the project in one go (``bench/gpu.sh`` wraps it for a GPU machine).

    python bench/gpu.py --device cuda --out docs/gpu          # on a GPU node (a few minutes)
    python bench/gpu.py --device cpu --quick --out /tmp/gpu   # the same code path, small, on CPU

1. ``flow``: the torch TV-L1 at 340x256 with OpenCV's default parameters and OpenCV's
   stopping rule (per-pair epsilon test; on CUDA frozen by masks inside the iteration
   and read back once per outer iteration, never per inner iteration): pairs/s at
   batch 16, 32 and 64 on frames of an encoded video, and the end-point error on pairs
   of known flow against the same solver on the CPU (same code, same pairs).
2. ``train``: ResNet-50 stream training (RGB and flow, 224x224, bf16 autocast on CUDA)
   through ``bench/train.py``: loader alone (frames from the jpeg codec, N workers),
   model alone and the full loop, in samples/s.
3. ``dag``: the tiny pipeline (config/test.yaml) with ``flow.device`` set to the device;
   training picks the GPU itself (``auto``).

Writes ``flow.csv``, ``train.csv``, ``dag.log``, ``gpu.log`` and ``summary.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

LOG: list[str] = []


def say(msg: str) -> None:
    print(msg, flush=True)
    LOG.append(msg)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


# --------------------------------------------------------------------------- 1. TV-L1


def check_flow(a, dev: torch.device, out: Path) -> dict:
    from flow import encoded_video_frames, ground_truth_pairs, mean_epe  # bench/flow.py

    from twostream.flow.params import opencv_defaults
    from twostream.flow.tvl1_torch import TorchTVL1

    w, h = (int(x) for x in a.size.lower().split("x"))
    params = opencv_defaults()
    n_pairs = max(a.pairs, max(a.batches))
    with tempfile.TemporaryDirectory() as tmp:
        frames = encoded_video_frames(n_pairs + 1, w, h, tmp)
    prev, nxt = frames[:-1], frames[1:]
    gprev, gnxt, gt = ground_truth_pairs(w, h)
    margin = max(4, min(w, h) // 16)

    # reference: the same solver on the CPU (eager, all cores), same pairs of known flow
    t0 = time.perf_counter()
    cpu = TorchTVL1(params, device="cpu", compile=False, batch_size=len(gprev))
    f_cpu = cpu(gprev, gnxt)
    e_cpu = mean_epe(f_cpu, gt, margin)
    say(f"flow: CPU reference EPE {e_cpu:.4f} on {len(gprev)} pairs of known flow ({time.perf_counter() - t0:.1f} s)")

    rows = []
    for b in a.batches:
        t0 = time.perf_counter()
        solver = TorchTVL1(params, device=str(dev), stopping="opencv", compile=a.compile, batch_size=b)
        solver(prev[:b], nxt[:b])  # first call: kernels load, compiled code specialises to the sizes
        sync(dev)
        warm = time.perf_counter() - t0
        times = []
        for _ in range(a.repeats):
            solver.iterations = 0
            sync(dev)
            t0 = time.perf_counter()
            f = solver(prev, nxt)  # returns host arrays: includes the copies back
            sync(dev)
            times.append(time.perf_counter() - t0)
        it = solver.iterations / len(prev)
        f_gt = solver(gprev, gnxt)
        e = mean_epe(f_gt, gt, margin)
        diff = float(np.sqrt(((f_gt - f_cpu) ** 2).sum(-1))[:, margin:-margin, margin:-margin].mean())
        med = float(np.median(times))
        rate = len(prev) / med
        row = dict(batch=b, pairs=len(prev), repeats=a.repeats, seconds_median=round(med, 4),
                   seconds_min=round(min(times), 4), seconds_max=round(max(times), 4),
                   pairs_per_s=round(rate, 2), inner_iterations_per_pair=round(it, 1), epe=round(e, 4),
                   epe_cpu=round(e_cpu, 4), epe_ratio=round(e / e_cpu, 4), mean_diff_to_cpu_px=round(diff, 4),
                   warmup_s=round(warm, 1), compile=solver.compile, size=f"{w}x{h}")
        rows.append(row)
        say(f"flow: batch {b:3d}: {rate:8.1f} pairs/s (median of {a.repeats}, {min(times):.3f}-{max(times):.3f} s "
            f"for {len(prev)} pairs), {it:.0f} inner iterations/pair, EPE {e:.4f} (CPU {e_cpu:.4f}, "
            f"ratio {e / e_cpu:.3f}), mean difference to CPU {diff:.4f} px, warm-up {warm:.1f} s")
        del solver
    with open(out / "flow.csv", "w", newline="") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    best = max(rows, key=lambda r: r["pairs_per_s"])
    return {"best_pairs_per_s": best["pairs_per_s"], "best_batch": best["batch"], "epe": best["epe"],
            "epe_cpu": e_cpu, "rows": rows}


# --------------------------------------------------------------------------- 2. training


NUM = r"([0-9.]+)"


def check_train(a, dev: torch.device, out: Path) -> dict:
    rows = []
    for stream in ("rgb", "flow"):
        cmd = [sys.executable, str(HERE / "train.py"), "--stream", stream, "--arch", a.arch, "--size", str(a.train_size),
               "--crop", str(a.crop), "--batch", str(a.batch), "--steps", str(a.steps), "--videos", str(a.videos),
               "--workers", str(a.workers), "--codec", "jpeg", "--device", str(dev), "--threads", "0"]
        if dev.type == "cuda":
            cmd.append("--amp")
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        txt = r.stdout + r.stderr
        (out / f"train_{stream}.log").write_text(" ".join(cmd) + "\n" + txt)
        if r.returncode != 0:
            say(f"train {stream}: FAILED (exit {r.returncode}); see train_{stream}.log\n{txt[-2000:]}")
            continue
        vals = {k: float(re.search(k + r"\s*:\s*" + NUM, txt).group(1)) for k in ("loader alone", "model alone",
                                                                                  "full loop")}
        row = dict(stream=stream, arch=a.arch, crop=a.crop, batch=a.batch, segments=3, workers=a.workers,
                   codec="jpeg", bf16=dev.type == "cuda", loader_sps=vals["loader alone"],
                   model_sps=vals["model alone"], full_sps=vals["full loop"],
                   ratio=round(vals["full loop"] / vals["model alone"], 3), wall_s=round(time.perf_counter() - t0, 1))
        rows.append(row)
        say(f"train {stream}: {a.arch} {a.crop}x{a.crop} batch {a.batch}x3 snippets, {a.workers} workers, jpeg: "
            f"loader {row['loader_sps']:.1f}, model {row['model_sps']:.1f}, full loop {row['full_sps']:.1f} "
            f"samples/s (full/model {row['ratio']:.2f})")
    if rows:
        with open(out / "train.csv", "w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)
    return {"rows": rows}


# --------------------------------------------------------------------------- 3. tiny DAG


def check_dag(a, dev: torch.device, out: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="twostream-dag-"))
    env = dict(os.environ)
    if not shutil.which("twostream"):  # rules call the CLI: a wrapper when the package is not installed
        bindir = work / "bin"
        bindir.mkdir()
        exe = bindir / "twostream"
        exe.write_text(f"#!/bin/sh\nexec {sys.executable} -m twostream \"$@\"\n")
        exe.chmod(0o755)
        env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                               if p])
    override = work / "device.yaml"
    override.write_text(f"flow:\n  device: {dev.type}\n")
    for d in ("config", "workflow"):
        shutil.copytree(ROOT / d, work / d)
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "--configfile", "config/test.yaml",
           str(override), "--snakefile", "workflow/Snakefile"]
    t0 = time.perf_counter()
    limit = max(30.0, min(a.dag_timeout, a.deadline - time.perf_counter()))
    say(f"dag: up to {limit:.0f} s: {' '.join(cmd)}")
    try:
        r = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env, timeout=limit)
    except subprocess.TimeoutExpired as e:
        r = subprocess.CompletedProcess(cmd, 124, (e.stdout or b"").decode(errors="replace") if isinstance(
            e.stdout, bytes) else (e.stdout or ""), f"\n[timed out after {limit:.0f} s]\n")
    wall = time.perf_counter() - t0
    devices = {}
    for log in sorted((work / "logs").rglob("*.log")) if (work / "logs").exists() else []:
        txt = log.read_text(errors="replace")
        m = re.search(r"device (cuda\S*|cpu)", txt) or re.search(r" on (cuda\S*|cpu) in ", txt)
        if m:
            devices[str(log.relative_to(work))] = m.group(1)
    (out / "dag.log").write_text(" ".join(cmd) + "\n" + (r.stdout or "") + (r.stderr or "") + "\n# devices in the rule logs\n" +
                                 "\n".join(f"{k}: {v}" for k, v in devices.items()) + "\n")
    ok = r.returncode == 0
    used = sorted(set(devices.values()))
    say(f"dag: config/test.yaml with flow.device {dev.type}: {'OK' if ok else 'FAILED (exit %d)' % r.returncode} "
        f"in {wall:.0f} s; devices named in the rule logs: {', '.join(used) or 'none found'}")
    if not ok:
        say(((r.stdout or "") + (r.stderr or ""))[-3000:])
    shutil.rmtree(work, ignore_errors=True)
    return {"ok": ok, "wall_s": round(wall, 1), "devices": used}


# --------------------------------------------------------------------------- main


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="small sizes (a CPU test of the same code path)")
    p.add_argument("--only", default="flow,train,dag", help="comma-separated checks to run")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--batches", dest="batch_list", default="", help="TV-L1 batch sizes, comma-separated (default 16,32,64)")
    p.add_argument("--budget", type=float, default=420.0, help="seconds for all checks (the DAG gets what is left)")
    a = p.parse_args(argv)
    a.deadline = time.perf_counter() + a.budget
    # sizes: the real ones, or small for a CPU run of the same code path
    a.size, a.batches, a.pairs, a.repeats = ("340x256", [16, 32, 64], 128, 3) if not a.quick else \
        ("64x48", [2, 4], 4, 2)
    a.arch, a.train_size, a.crop, a.batch, a.steps, a.videos = ("resnet50", 256, 224, 32, 20, 256) if not a.quick \
        else ("small", 64, 64, 4, 2, 16)
    if a.batch_list:
        a.batches = [int(b) for b in a.batch_list.split(",")]
    a.workers = min(8, os.cpu_count() or 1) if not a.quick else 1
    a.cores = os.cpu_count() or 2
    a.dag_timeout = 420
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py: --device cuda but torch sees no CUDA device")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    say(f"bench/gpu.py on {name}; torch {torch.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPU cores; checks: {a.only}{' (quick sizes)' if a.quick else ''}")
    summary = {"device": name, "torch": torch.__version__, "quick": a.quick}
    t_all = time.perf_counter()
    for check, fn in (("flow", check_flow), ("train", check_train), ("dag", check_dag)):
        if check not in a.only.split(","):
            continue
        t0 = time.perf_counter()
        try:
            summary[check] = fn(a, dev, out)
        except Exception as e:  # one failing check must not hide the others' figures
            import traceback

            say(f"{check}: FAILED: {type(e).__name__}: {e}\n{traceback.format_exc()[-3000:]}")
            summary[check] = {"error": f"{type(e).__name__}: {e}"}
        say(f"{check}: {time.perf_counter() - t0:.0f} s")
        (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        (out / "gpu.log").write_text("\n".join(LOG) + "\n")
    say(f"all checks: {time.perf_counter() - t_all:.0f} s")
    (out / "gpu.log").write_text("\n".join(LOG) + "\n")
    f = summary.get("flow", {})
    if "best_pairs_per_s" in f:
        say(f"TV-L1 {a.size}: {f['best_pairs_per_s']:.1f} pairs/s at batch {f['best_batch']} on {name} "
            f"(EPE {f['epe']:.4f}, CPU {f['epe_cpu']:.4f})")
    return 0 if all("error" not in v for v in summary.values() if isinstance(v, dict)) else 1


if __name__ == "__main__":
    sys.exit(main())
