"""The ``twostream flow`` stage: index alignment, storage, provenance, bad input, synthetic truth."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from flow_helpers import textured, write_frames_shard
from twostream.cli import main
from twostream.errors import InputError
from twostream.flow.stage import compute_shard, to_gray
from twostream.store import FlowShard, StoreError

# small, fast TV-L1 for plumbing tests (the algorithm itself is tested in test_flow_tvl1.py)
FAST = {"nscales": 3, "warps": 3, "outer_iterations": 2, "inner_iterations": 10}


def cfg(**kw):
    d = {"backend": "torch", "device": "cpu", "compile": False, "tvl1": dict(FAST)}
    d.update(kw)
    return d


def moving_patch_video(n: int, moves: dict[int, tuple[int, int]], h=48, w=64) -> np.ndarray:
    """Static textured background and a textured square that moves by ``moves[t]`` (dx, dy)
    between frames t and t + 1 only. RGB uint8 (n, h, w, 3)."""
    bg = (textured(h, w, "camera") // 3).astype(np.uint8)
    patch = textured(16, 16, "astronaut")
    x, y, out = 20, 16, []
    for t in range(n):
        f = bg.copy()
        f[y : y + 16, x : x + 16] = patch
        out.append(np.repeat(f[..., None], 3, -1))
        dx, dy = moves.get(t, (0, 0))
        x, y = x + dx, y + dy
    return np.stack(out)


def patch_flow(flow: np.ndarray, t: int, x: int = 20, y: int = 16) -> np.ndarray:
    """Median flow of field t over the inner part of the patch (where it was in frame t)."""
    return np.median(flow[t, y + 4 : y + 12, x + 4 : x + 12].reshape(-1, 2), axis=0)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One torch thread: its spinning OpenMP workers would starve OpenCV's (see test_flow_tvl1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    p = tmp_path_factory.mktemp("frames") / "shard-000.h5"
    write_frames_shard(
        p,
        {
            "a": moving_patch_video(6, {2: (3, 0)}),  # moves only between frames 2 and 3
            "b": moving_patch_video(4, {0: (0, 2)}),  # moves only between frames 0 and 1
        },
    )
    return p


@pytest.fixture(scope="module")
def flow_path(shard, tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "shard-000.h5"
    s = compute_shard(shard, out, cfg(), progress=False)
    assert s["pairs"] == 5 + 3
    return out


def test_n_frames_give_n_minus_1_aligned_fields(flow_path):
    fs = FlowShard(flow_path)
    assert fs.videos.set_index("video_id").loc[["a", "b"], "n_frames"].tolist() == [5, 3]
    assert fs.videos.set_index("video_id").loc[["a", "b"], "offset"].tolist() == [0, 5]
    a = fs.read("a", np.arange(5))
    b = fs.read("b", np.arange(3))
    # field t is frame t -> t+1: the patch moved only between frames 2 and 3 of "a"
    np.testing.assert_allclose(patch_flow(a, 2), [3.0, 0.0], atol=0.35)
    for t in (0, 1, 3, 4):
        np.testing.assert_allclose(patch_flow(a, t, x=20 + 3 * (t > 2)), [0.0, 0.0], atol=0.2)
    # ... and only between frames 0 and 1 of "b" (the second video of the shard)
    np.testing.assert_allclose(patch_flow(b, 0), [0.0, 2.0], atol=0.35)
    for t in (1, 2):
        np.testing.assert_allclose(patch_flow(b, t, y=18), [0.0, 0.0], atol=0.2)


def test_storage_quantization_and_provenance(shard, flow_path, tmp_path):
    with h5py.File(flow_path) as f:
        ds = f["flow"]
        assert ds.dtype == np.uint8 and ds.shape == (8, 48, 64, 2)
        assert ds.chunks == (1, 48, 64, 2) and ds.compression == "lzf"
        attrs = dict(f.attrs)
    assert attrs["kind"] == "flow" and attrs["backend"] == "torch" and attrs["storage"] == "uint8"
    assert attrs["bound"] == 20.0 and "128 = zero" in attrs["quantization"]
    params = json.loads(attrs["params"])
    assert params["tvl1"]["inner_iterations"] == 10 and params["tvl1"]["tau"] == 0.25
    # float16 storage of the same computation agrees within half a quantization step
    out16 = tmp_path / "f16.h5"
    compute_shard(shard, out16, cfg(storage="float16"), progress=False)
    f16 = FlowShard(out16).read("a", np.arange(5))
    q = FlowShard(flow_path).read("a", np.arange(5))
    assert FlowShard(out16).read_raw("a", [0]).dtype == np.float16
    assert np.abs(f16 - q).max() <= 0.5 * 20 / 127 + 1e-2


def test_bound_clips_the_stored_flow(shard, tmp_path):
    out = tmp_path / "clipped.h5"
    compute_shard(shard, out, cfg(bound=1.0), progress=False)
    a = FlowShard(out).read("a", np.arange(5))
    assert np.abs(a).max() <= 1.0 + 1e-6
    np.testing.assert_allclose(patch_flow(a, 2), [1.0, 0.0], atol=0.05)


@pytest.mark.parametrize("backend", ["opencv", "dis"])
def test_other_backends_write_the_same_layout(shard, tmp_path, backend):
    out = tmp_path / f"{backend}.h5"
    compute_shard(shard, out, cfg(backend=backend), progress=False)
    fs = FlowShard(out)
    assert fs.attrs["backend"] == backend
    a = fs.read("a", np.arange(5))
    np.testing.assert_allclose(patch_flow(a, 2), [3.0, 0.0], atol=0.5)
    np.testing.assert_allclose(patch_flow(a, 1), [0.0, 0.0], atol=0.3)


@pytest.mark.parametrize(
    "videos, kw, match",
    [
        ({"ok": 4, "short": 1}, {}, "video 'short' has 1 frame"),
        ({"ok": 4, "empty": 0}, {}, "video 'empty' has 0 frame"),
        ({"ok": 4}, {"frames_dtype": np.float32}, "dtype float32"),
        ({"ok": 4}, {"drop_frames": True}, "missing dataset /frames"),
    ],
)
def test_bad_input_names_the_problem_and_writes_nothing(tmp_path, videos, kw, match):
    src = tmp_path / "bad.h5"
    write_frames_shard(
        src,
        {k: moving_patch_video(n, {}) if n else np.zeros((0, 48, 64, 3), np.uint8) for k, n in videos.items()},
        **kw,
    )
    out = tmp_path / "out" / "flow.h5"
    with pytest.raises(InputError, match=match):
        compute_shard(src, out, cfg(), progress=False)
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no temporary left behind


def test_missing_shard_is_a_store_error(tmp_path):
    with pytest.raises(StoreError, match="no such frames shard"):
        compute_shard(tmp_path / "nope.h5", tmp_path / "o.h5", cfg(), progress=False)


def test_cli_runs_and_reports_errors_in_one_line(shard, tmp_path, capsys):
    out = tmp_path / "cli.h5"
    params = json.dumps(cfg(backend="dis"))
    assert main(["flow", "--params", params, "--frames", str(shard), "--out", str(out), "--threads", "1"]) == 0
    assert FlowShard(out).videos.n_frames.sum() == 8
    bad = tmp_path / "bad.h5"
    write_frames_shard(bad, {"ok": moving_patch_video(3, {}), "lonely": moving_patch_video(1, {})})
    capsys.readouterr()
    assert main(["flow", "--params", params, "--frames", str(bad), "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lonely" in err[0] and str(bad) in err[0]
    assert not (tmp_path / "x.h5").exists()
    assert main(["flow", "--params", json.dumps({"backend": "horn"}), "--frames", str(shard), "--out", "y.h5"]) == 2


def test_synthetic_dataset_object_flow_matches_generator():
    """Motion classes of the synthetic dataset: the flow on the moving disc has the generator's
    direction and speed (median over frames where the disc is fully inside the image).

    Discs under 4 px radius are left out: TV-L1's smoothness term (lambda 0.15) flattens such
    small objects into the background, in OpenCV's implementation as in ours (measured).
    """
    from twostream.datasets.synthetic import SyntheticConfig, class_table, render_clip
    from twostream.flow import flow_config, make_backend

    sc = SyntheticConfig()
    classes = class_table(sc)
    backend = make_backend(flow_config(cfg()))
    ys, xs = np.mgrid[0 : sc.size, 0 : sc.size]
    for name in ("MotionRight", "MotionLeft", "MotionUp", "MotionDown"):
        label = int(classes.loc[classes.class_name == name, "label"].iloc[0])
        got, want = [], []
        for seed in range(8):
            clip = render_clip(sc, label, seed, classes)
            tr = clip.truth
            if tr.radii[:, 0].min() < 4.0:
                continue
            gray = to_gray(clip.frames)
            flow = backend(gray[:-1], gray[1:])
            for t in range(len(flow)):
                (cx, cy), r = tr.centres[t, 0], tr.radii[t, 0]
                if not (r + 4 < cx < sc.size - r - 4 and r + 4 < cy < sc.size - r - 4):
                    continue  # the disc wraps around the torus border
                inside = np.hypot(xs - cx, ys - cy) < r - 1
                got.append(np.median(flow[t][inside], axis=0))
                want.append(tr.displacement[t])
            if len(got) >= 8:
                break
        assert len(got) >= 4, name
        got, want = np.median(got, axis=0), np.median(want, axis=0)
        main_axis = int(np.argmax(np.abs(want)))
        assert abs(want[main_axis]) > 1.0
        assert np.sign(got[main_axis]) == np.sign(want[main_axis]), (name, got, want)
        np.testing.assert_allclose(got, want, atol=0.3, err_msg=name)
