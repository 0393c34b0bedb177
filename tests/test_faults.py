"""Faults a cluster user meets, with the real CLI on real files.

Every case runs ``python -m twostream ...`` in a subprocess and asserts the one line the
user sees (``twostream: error: <path>: <cause>``, no traceback), the exit code, and that
nothing is left at the final path (nor a temporary file beside it):

* a full disk and a read-only folder (tmpfs mounts; skipped without root, failed under
  ``CI=true`` as ``test_slurm.py`` does), an output that is a folder, a parent that is a file;
* flipped bytes at chosen offsets (a frame chunk, a JPEG frame, the /videos table, every
  metadata byte of a small shard) read by flow, the training loader and the shard readers;
* SIGKILL mid-write then a rerun, SIGTERM and SIGINT mid-write;
* names Snakemake cannot carry, hidden and system files, empty and one-sided split lists,
  an empty index.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import write_test_video

SRC = str(Path(__file__).resolve().parents[1] / "src")
ENV = dict(os.environ, PYTHONPATH=SRC, HDF5_USE_FILE_LOCKING="FALSE", PYTHONUNBUFFERED="1")
FLOW = json.dumps({"backend": "dis"})


def cli(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twostream", *map(str, args)], env=ENV, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def error_line(r: subprocess.CompletedProcess, code: int = 2) -> str:
    """The run failed with ``code`` and said so in exactly one line, its last, and no traceback."""
    assert r.returncode == code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.replace("\r", "\n").splitlines() if ln.startswith("twostream:")]
    assert len(lines) == 1, r.stderr
    assert r.stderr.rstrip().endswith(lines[0])
    return lines[0]


def nothing_at(path: Path) -> None:
    """No file at the final path and no temporary file beside it."""
    path = Path(path)
    assert not path.exists(), path
    if path.parent.is_dir():
        left = [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")]
        assert not left, left


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Folder dataset (2 classes x 3 videos of 12 frames, 64x48), its index, frames and flow shards."""
    root = tmp_path_factory.mktemp("faults")
    for c in ("A", "B"):
        for i in range(3):
            write_test_video(root / "ds" / c / f"v{i}.avi", n=12, height=48, width=64, seed=i + 3 * (c == "B"))
    r = cli("index", "--params", json.dumps({"kind": "folder", "root": "ds"}), "--out", "index.csv", cwd=root)
    assert r.returncode == 0, r.stderr
    r = cli("decode", "--params", '{"shards": 1}', "--index", "index.csv", "--shard", "shard-000",
            "--out", "frames.h5", "--no-progress", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = cli("flow", "--params", FLOW, "--frames", "frames.h5", "--out", "flow.h5", cwd=root)
    assert r.returncode == 0, r.stderr
    # an index whose only video does not exist: a stage that decoded before checking its
    # outputs would fail on the video, not on the output path
    idx = pd.read_csv(root / "index.csv").head(1).assign(path="ds/A/missing.avi")
    idx.to_csv(root / "missing.csv", index=False)
    return root


@pytest.fixture
def mount(tmp_path):
    """``mount(size, ro=False)``: a fresh tmpfs folder; unmounted afterwards."""
    done = []

    def make(size: str = "64k", ro: bool = False) -> Path:
        d = tmp_path / f"mnt{len(done)}"
        d.mkdir()
        why = None
        if os.geteuid() != 0 or shutil.which("mount") is None:
            why = "not root" if os.geteuid() != 0 else "no mount command"
        else:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if ro else ""), "tmpfs", str(d)],
                               capture_output=True, text=True)  # fmt: skip
            why = r.stderr.strip() if r.returncode else None
        if why:
            msg = f"disk-full and read-only cases need a tmpfs mount, which failed here ({why})"
            if os.environ.get("CI") == "true":
                pytest.fail(msg)
            pytest.skip(msg)
        done.append(d)
        return d

    yield make
    for d in done:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(folder: Path) -> None:
    """Fill a (small) file system to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for block in (4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)


def decode(data, out, index="index.csv", **extra):
    args = ["decode", "--params", json.dumps({"shards": 1, **extra.pop("params", {})}), "--index", index,
            "--shard", "shard-000", "--out", out, "--no-progress"]  # fmt: skip
    for k, v in extra.items():
        args += [f"--{k.replace('_', '-')}", v]
    return cli(*args, cwd=data)


# ----------------------------------------------------------------------------- writing


def test_disk_full_decode_flow_index(data, mount):
    mnt = mount("64k")
    out = mnt / "frames.h5"
    line = error_line(decode(data, out))
    assert line == f"twostream: error: {out}: cannot write (No space left on device)"
    nothing_at(out)
    assert not list(mnt.iterdir())  # the space is free again

    out = mnt / "flow.h5"
    line = error_line(cli("flow", "--params", FLOW, "--frames", "frames.h5", "--out", out, cwd=data))
    assert line == f"twostream: error: {out}: cannot write (No space left on device)"
    nothing_at(out)

    fill(mnt)
    out = mnt / "index.csv"
    r = cli("index", "--params", json.dumps({"kind": "folder", "root": "ds"}), "--out", out, cwd=data)
    assert error_line(r) == f"twostream: error: {out}: cannot write (No space left on device)"
    nothing_at(out)


def test_read_only_folder_fails_before_any_work(data, mount):
    mnt = mount("1m", ro=True)
    out = mnt / "frames.h5"
    line = error_line(decode(data, out, index="missing.csv"))
    assert line == f"twostream: error: {out}: cannot write (Read-only file system)"
    out = mnt / "sub" / "flow.h5"
    line = error_line(cli("flow", "--params", FLOW, "--frames", "frames.h5", "--out", out, cwd=data))
    assert line == f"twostream: error: {out}: cannot write: cannot create folder {mnt / 'sub'} (Read-only file system)"
    nothing_at(out)


def test_output_is_a_folder_or_under_a_file(data, tmp_path):
    (tmp_path / "frames.h5").mkdir()
    line = error_line(decode(data, tmp_path / "frames.h5", index="missing.csv"))
    assert line == f"twostream: error: {tmp_path / 'frames.h5'}: cannot write: it is a folder"

    (tmp_path / "plain").write_text("a file")
    out = tmp_path / "plain" / "sub" / "frames.h5"
    line = error_line(decode(data, out, index="missing.csv"))
    assert line == f"twostream: error: {out}: cannot write: {tmp_path / 'plain'} is a file, not a folder"
    nothing_at(tmp_path / "x.h5")

    # the second output (the bad-video list) is checked before decoding too
    (tmp_path / "bad.csv").mkdir()
    line = error_line(decode(data, tmp_path / "f2.h5", index="missing.csv", bad_list=tmp_path / "bad.csv"))
    assert line == f"twostream: error: {tmp_path / 'bad.csv'}: cannot write: it is a folder"
    nothing_at(tmp_path / "f2.h5")

    out = tmp_path / "plain" / "index.csv"
    r = cli("index", "--params", json.dumps({"kind": "folder", "root": "ds"}), "--out", out, cwd=data)
    assert error_line(r) == f"twostream: error: {out}: cannot write: {tmp_path / 'plain'} is a file, not a folder"


# ----------------------------------------------------------------------------- killed jobs


def _start_flow(data, out):
    """Flow with OpenCV's TV-L1 (about a second or more here): slow enough to be killed mid-write."""
    params = json.dumps({"backend": "opencv"})
    return subprocess.Popen([sys.executable, "-m", "twostream", "flow", "--params", params, "--frames", "frames.h5",
                             "--out", str(out), "--threads", "1"], cwd=data, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait_for(path: Path, p: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while not path.exists() and p.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    assert path.exists() and p.poll() is None, "the job ended before it was killed"


def test_sigkill_mid_write_then_rerun_removes_the_leftover(data, tmp_path):
    out = tmp_path / "flow.h5"
    tmp = tmp_path / ".flow.h5.tmp"
    p = _start_flow(data, out)
    _wait_for(tmp, p)
    p.kill()
    p.wait()
    assert tmp.exists() and not out.exists()  # SIGKILL cannot be caught: the leftover stays ...
    r = cli("flow", "--params", FLOW, "--frames", "frames.h5", "--out", out, cwd=data)
    assert r.returncode == 0, r.stderr
    assert not tmp.exists()  # ... until the rerun of the same job, which uses the same name
    assert [p.name for p in tmp_path.iterdir()] == ["flow.h5"]
    with h5py.File(out) as f:
        assert f["flow"].shape[0] == 66


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_sigint_mid_write_remove_the_temporary_file(data, tmp_path, sig):
    out = tmp_path / "flow.h5"
    p = _start_flow(data, out)
    _wait_for(tmp_path / ".flow.h5.tmp", p)
    time.sleep(0.2)  # inside the flow loop
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    r = subprocess.CompletedProcess(p.args, p.returncode, "", err)
    name = signal.Signals(sig).name
    assert error_line(r, 128 + sig) == f"twostream: stopped by {name} (temporary files removed)"
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- corrupt files


def _flip(path: Path, offsets, mask: int = 0xFF) -> None:
    b = bytearray(path.read_bytes())
    for off in offsets:
        b[off] ^= mask
    path.write_bytes(bytes(b))


def _video(path: Path, kind: str, video_id: str) -> tuple[int, int]:
    with h5py.File(path) as f:
        t = pd.DataFrame(f["videos"][()])
        row = t[t.video_id == video_id.encode()].iloc[0]
        return int(row.offset), int(row.n_frames)


def _chunk(path: Path, name: str, row: int) -> tuple[int, int]:
    with h5py.File(path) as f:
        info = f[name].id.get_chunk_info_by_coord((row,) + (0,) * (f[name].ndim - 1))
        return info.byte_offset, info.size


def test_checksums_are_on(data):
    for name, key in (("frames.h5", "frames"), ("flow.h5", "flow")):
        with h5py.File(data / name) as f:
            assert f[key].fletcher32 and f[key].compression == "lzf"
            assert "crc32" in f["videos"].attrs
        assert (data / name).read_bytes()[8] == 3  # superblock version 3 (HDF5 1.10): metadata checksums


def test_corrupt_frame_chunk_stops_flow_naming_file_and_video(data, tmp_path):
    frames = tmp_path / "frames.h5"
    shutil.copy(data / "frames.h5", frames)
    off, n = _video(frames, "frames", "B/v1")
    start, size = _chunk(frames, "frames", off + 5)
    _flip(frames, [start + size // 2])  # one byte in the 6th frame of B/v1
    out = tmp_path / "flow.h5"
    line = error_line(cli("flow", "--params", FLOW, "--frames", frames, "--out", out))
    assert line == (f"twostream: error: {frames}: video 'B/v1': corrupt or unreadable data "
                    "(Can't synchronously read data (filter returned failure during read))")  # fmt: skip
    nothing_at(out)


def test_corrupt_videos_table_names_the_file(data, tmp_path):
    frames = tmp_path / "frames.h5"
    shutil.copy(data / "frames.h5", frames)
    raw = frames.read_bytes()
    at = raw.find(b"B/v2")  # the video ids live in HDF5's global heap, which has no checksum
    assert at > 0
    _flip(frames, [at + 3], 0x01)  # "B/v2" -> "B/v3": still a valid name, silently another video
    line = error_line(cli("flow", "--params", FLOW, "--frames", frames, "--out", tmp_path / "flow.h5"))
    assert line == f"twostream: error: {frames}: corrupt /videos table (its CRC-32 does not match)"
    nothing_at(tmp_path / "flow.h5")


def test_corrupt_jpeg_frame_fails_its_crc(data, tmp_path):
    frames = tmp_path / "jpeg.h5"
    r = decode(data, frames, params={"codec": "jpeg"})
    assert r.returncode == 0, r.stderr
    off, n = _video(frames, "frames", "A/v2")
    with h5py.File(frames) as f:
        assert f["jpeg_crc32"].fletcher32 and len(f["jpeg_crc32"]) == len(f["jpeg"])
        jpg = f["jpeg"][off + 3].tobytes()
    at = frames.read_bytes().find(jpg)
    _flip(frames, [at + len(jpg) // 2])  # JPEG entropy data: most flips still decode, to other pixels
    line = error_line(cli("flow", "--params", FLOW, "--frames", frames, "--out", tmp_path / "flow.h5"))
    assert line == f"twostream: error: {frames}: video 'A/v2': frame {off + 3} fails its CRC-32 check (corrupt data)"


def test_corrupt_flow_in_training_loader_names_file_and_video(data, tmp_path):
    flow = tmp_path / "flow.h5"
    shutil.copy(data / "flow.h5", flow)
    off, n = _video(flow, "flow", "A/v1")
    train = pd.read_csv(data / "index.csv").query("split == 'train'").video_id.tolist()
    assert "A/v1" in train
    _flip(flow, [sum(_chunk(flow, "flow", r)) - 3 for r in range(off, off + n)])  # every field of A/v1
    params = {"crop_size": 32, "flow_length": 2, "epochs": 1, "batch_size": 2, "segments": 1, "val_frames": 1,
              "widths": [4, 4, 4, 4], "workers": 1}  # fmt: skip
    r = cli("train", "--stream", "flow", "--flow", flow, "--out", tmp_path / "model", "--params", json.dumps(params),
            "--threads", "1", "--device", "cpu")  # fmt: skip
    line = error_line(r)
    assert line.startswith(f"twostream: error: {flow}: video 'A/v1': corrupt or unreadable data (")
    assert not (tmp_path / "model" / "checkpoint.pt").exists()


SWEEP = r"""
import sys, json, numpy as np
from twostream.store import FrameShard, FlowShard, StoreError
src, kind, dst, offsets = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
Cls = FrameShard if kind == "frames" else FlowShard
def read_all(p):
    sh = Cls(p)
    out = [sh.videos.to_csv(), sorted(sh.attrs.items(), key=str)]
    out += [sh.read(v.video_id, np.arange(v.n_frames)) for v in sh.videos.itertuples()]
    sh.close()
    return out
def same(a, b):
    return len(a) == len(b) and a[:2] == b[:2] and all(np.array_equal(x, y) for x, y in zip(a[2:], b[2:]))
ref, data = read_all(src), open(src, "rb").read()
res = {"caught": 0, "harmless": 0, "silent": [], "other": []}
for off in offsets:
    b = bytearray(data); b[off] ^= 0xFF
    open(dst, "wb").write(b)
    try:
        got = read_all(dst)
    except StoreError as e:
        assert "\n" not in str(e) and dst in str(e), str(e)
        res["caught"] += 1
        continue
    except BaseException as e:
        res["other"].append([off, type(e).__name__, str(e)[:100]])
        continue
    if same(got, ref):
        res["harmless"] += 1
    else:
        res["silent"].append(off)
print(json.dumps(res))
"""


@pytest.mark.parametrize("kind", ["frames", "flow"])
def test_every_metadata_byte_flip_is_caught_or_harmless(data, tmp_path, kind):
    """Flip each byte outside the chunks (superblock, object headers, chunk index, heaps,
    attributes) of a 2-video shard, one at a time: every read either fails with one
    StoreError line naming the file or returns exactly the original data."""
    small = tmp_path / f"{kind}-small.h5"
    # a 2-video shard, written by the stages themselves
    sub = pd.read_csv(data / "index.csv").query("video_id in ['A/v0', 'B/v0']")
    sub.to_csv(tmp_path / "index.csv", index=False)
    frames = tmp_path / "frames-small.h5"
    r = decode(data, frames, index=tmp_path / "index.csv")
    assert r.returncode == 0, r.stderr
    if kind == "flow":
        r = cli("flow", "--params", FLOW, "--frames", frames, "--out", small)
        assert r.returncode == 0, r.stderr
    else:
        small = frames
    key = kind
    with h5py.File(small) as f:
        ds = f[key]
        chunks = [ds.id.get_chunk_info(i) for i in range(ds.id.get_num_chunks())]
    inside = np.zeros(small.stat().st_size, bool)
    for c in chunks:
        inside[c.byte_offset : c.byte_offset + c.size] = True
    offsets = np.flatnonzero(~inside)
    offsets = offsets[:: max(1, len(offsets) // 120)].tolist()  # 120 metadata bytes, evenly spread
    r = subprocess.run([sys.executable, "-c", SWEEP, str(small), kind, str(tmp_path / "flipped.h5"),
                        json.dumps(offsets)], env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    assert res["silent"] == [] and res["other"] == [], res
    assert res["caught"] > len(offsets) // 4, res  # the control: the sweep does hit live metadata


# ----------------------------------------------------------------------------- index checks


def _index(root: Path, out: Path, **params) -> subprocess.CompletedProcess:
    return cli("index", "--params", json.dumps({"root": str(root), **params}), "--out", out)


def _folder(root: Path, names: list[str]) -> None:
    for n in names:
        write_test_video(root / n, n=3, height=16, width=16)


def test_braces_in_a_file_name_fail_at_index_time(tmp_path):
    root = tmp_path / "ds"
    _folder(root, ["A/a0.avi", "A/a1.avi", "B/clip {2}.avi", "B/b1.avi"])
    out = tmp_path / "index.csv"
    line = error_line(_index(root, out, kind="folder", test_ratio=0.5))
    assert line == (f"twostream: error: {root / 'B' / 'clip {2}.avi'}: '{{' or '}}' in the path; "
                    "Snakemake reads them as wildcards and cannot use this file (rename it)")  # fmt: skip
    nothing_at(out)


def test_hidden_and_system_files_are_never_videos(tmp_path):
    root = tmp_path / "ds"
    _folder(root, ["A/a0.avi", "A/a1.avi", "A/._a0.avi", "A/.hidden.avi", "B/b0.avi", "B/b1.avi",
                   ".hiddenclass/x0.avi", ".hiddenclass/x1.avi", "__MACOSX/A/._a0.avi"])  # fmt: skip
    for n in ("A/Thumbs.db", "A/desktop.ini", "A/.DS_Store", ".DS_Store"):
        (root / n).write_bytes(b"\0\1\2")
    out = tmp_path / "index.csv"
    r = _index(root, out, kind="folder", test_ratio=0.5)
    assert r.returncode == 0, r.stderr
    assert sorted(pd.read_csv(out).video_id) == ["A/a0", "A/a1", "B/b0", "B/b1"]
    # a split list naming a hidden file is an error naming the list and the line
    (root / "classInd.txt").write_text("1 A\n2 B\n")
    (root / "trainlist01.txt").write_text("A/a0.avi 1\nA/._a0.avi 1\nB/b0.avi 2\n")
    (root / "testlist01.txt").write_text("A/a1.avi\nB/b1.avi\n")
    line = error_line(_index(root, out, kind="ucf101"))
    assert line == f"twostream: error: {root / 'trainlist01.txt'}:2: 'A/._a0.avi' is a hidden or system file, never a video"


def _ucf(root: Path) -> None:
    _folder(root, ["A/a0.avi", "A/a1.avi", "B/b0.avi", "B/b1.avi"])
    (root / "classInd.txt").write_text("1 A\n2 B\n")
    (root / "trainlist01.txt").write_text("A/a0.avi 1\nB/b0.avi 2\n")
    (root / "testlist01.txt").write_text("A/a1.avi\nB/b1.avi\n")


@pytest.mark.parametrize("name", ["trainlist01.txt", "testlist01.txt"])
def test_empty_split_list(tmp_path, name):
    root = tmp_path / "ds"
    _ucf(root)
    (root / name).write_text("\n  \n")
    out = tmp_path / "index.csv"
    assert error_line(_index(root, out, kind="ucf101")) == f"twostream: error: {root / name}: split list is empty"
    nothing_at(out)


def test_split_without_test_videos_and_missing_video(tmp_path):
    root = tmp_path / "ds"
    _folder(root, ["a/v0.avi", "a/v1.avi", "b/v0.avi", "b/v1.avi"])
    for c in ("a", "b"):  # HMDB51 tags: every video train
        (root / f"{c}_test_split1.txt").write_text("v0.avi 1 \nv1.avi 1 \n")
    out = tmp_path / "index.csv"
    line = error_line(_index(root, out, kind="hmdb51"))
    assert line == (f"twostream: error: {root}/*_test_split1.txt: split has no test videos "
                    "(training needs both train and test videos)")  # fmt: skip
    (root / "b_test_split1.txt").write_text("v0.avi 1 \nv9.avi 2 \n")
    line = error_line(_index(root, out, kind="hmdb51"))
    assert line == (f"twostream: error: {root / 'b' / 'v9.avi'}: listed video does not exist "
                    f"(listed in {root / 'b_test_split1.txt'}:2)")  # fmt: skip
    # a folder dataset of one video per class has no test videos
    one = tmp_path / "one"
    _folder(one, ["a/v0.avi", "b/v0.avi"])
    line = error_line(_index(one, out, kind="folder"))
    assert line == f"twostream: error: {one}: split has no test videos (training needs both train and test videos)"
    nothing_at(out)


def test_empty_index_given_to_decode(data, tmp_path):
    (tmp_path / "index.csv").write_text("")
    out = tmp_path / "frames.h5"
    line = error_line(decode(data, out, index=tmp_path / "index.csv"))
    assert line == f"twostream: error: {tmp_path / 'index.csv'}: empty file, not a video index (rerun twostream index)"
    (tmp_path / "index.csv").write_text("video_id,path,label,class_name,split\n")
    line = error_line(decode(data, out, index=tmp_path / "index.csv"))
    assert line == f"twostream: error: {tmp_path / 'index.csv'}: the index lists no videos (rerun twostream index)"
    nothing_at(out)
