"""Videos of different frame sizes and aspect ratios in one shard: flow layouts, loaders,
fixed-size decoding, empty shards, truncated clips kept."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_test_video
from flow_helpers import textured
from twostream.cli import main
from twostream.data import ClipDataset
from twostream.decode import DecodeConfig, FrameWriter, decode_shard
from twostream.errors import InputError
from twostream.flow.stage import compute_shard
from twostream.store import FlowShard, FrameShard, decode_flow_png, encode_flow_png, write_provenance

# small, fast TV-L1 (the algorithm itself is tested in test_flow_tvl1.py)
TVL1 = {"backend": "torch", "device": "cpu", "compile": False, "stopping": "fixed",
       "tvl1": {"nscales": 2, "warps": 2, "outer_iterations": 2, "inner_iterations": 10}}


def moving_square(n: int, h: int, w: int, dx: int, dy: int, seed: int = 0) -> np.ndarray:
    """RGB (n, h, w, 3): a textured square moving by (dx, dy) per frame over a still background."""
    bg = (textured(h, w, "camera") // 3).astype(np.uint8)
    patch = textured(12, 12, "astronaut")
    out = []
    for t in range(n):
        f = bg.copy()
        x, y = w // 2 - 6 + dx * t, h // 2 - 6 + dy * t
        f[y : y + 12, x : x + 12] = patch
        out.append(np.repeat(f[..., None], 3, -1))
    return np.stack(out)


# id -> (frames, class); landscape, portrait, square, odd sizes
VIDEOS = {
    "land": (moving_square(5, 36, 52, 2, 0), 0),
    "portrait": (moving_square(6, 50, 30, 0, 2, 1), 1),
    "odd": (moving_square(4, 33, 41, 2, 0, 2), 0),
    "square": (moving_square(5, 40, 40, 0, 2, 3), 1),
}


def write_shard(path, videos, codec="jpeg"):
    """A frames shard through the decode stage's writer (jpeg quality 100)."""
    with h5py.File(path, "w") as f:
        w = FrameWriter(f, codec, 100)
        for i, (vid, (frames, label)) in enumerate(videos.items()):
            row = {"video_id": vid, "label": label, "class_name": f"c{label}", "split": "train" if i % 3 else "test"}
            w.add(row, [np.ascontiguousarray(x[..., ::-1]) for x in frames], 25.0)
        w.finish()
        write_provenance(f, "frames", {}, codec=codec)
    return path


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    d = tmp_path_factory.mktemp("mixed")
    frames = write_shard(d / "frames.h5", VIDEOS)
    flow = d / "flow.h5"
    compute_shard(frames, flow, TVL1, progress=False)
    return frames, flow


def test_png_layout_holds_every_size_and_equals_the_fixed_layout(mixed, tmp_path):
    frames, flow = mixed
    fs = FlowShard(flow)
    assert fs.layout == "png"
    with h5py.File(flow) as f:
        assert "flow_png" in f and "flow" not in f and f.attrs["layout"] == "png"
    for vid, (fr, _) in VIDEOS.items():
        # the same video alone in a shard: one size, so auto gives the fixed layout
        one = write_shard(tmp_path / f"{vid}.h5", {vid: VIDEOS[vid]})
        out = tmp_path / f"{vid}-flow.h5"
        compute_shard(one, out, TVL1, progress=False)
        ref = FlowShard(out)
        assert ref.layout == "fixed"
        n = len(fr) - 1
        got = fs.read_raw(vid, np.arange(n))
        assert got.shape == (n,) + fr.shape[1:3] + (2,) and got.dtype == np.uint8
        np.testing.assert_array_equal(got, ref.read_raw(vid, np.arange(n)))  # lossless
        # and the motion is the square's: (2, 0) or (0, 2) px/frame at its centre
        h, w = fr.shape[1:3]
        dx, dy = (2, 0) if vid in ("land", "odd") else (0, 2)
        centre = fs.read(vid, [0])[0, h // 2 - 3 : h // 2 + 3, w // 2 - 3 : w // 2 + 3]
        np.testing.assert_allclose(np.median(centre.reshape(-1, 2), 0), [dx, dy], atol=0.5)


def test_fixed_layout_refuses_mixed_sizes_in_one_line(mixed, tmp_path):
    frames, _ = mixed
    out = tmp_path / "f.h5"
    with pytest.raises(InputError, match=r"frames\.h5: videos of 4 frame sizes \(36x52, 50x30.*flow\.layout") as e:
        compute_shard(frames, out, {**TVL1, "layout": "fixed"}, progress=False)
    assert "\n" not in str(e.value) and not out.exists()


@pytest.mark.parametrize("dtype", [np.uint8, np.float16])
def test_flow_png_round_trip_is_exact(dtype):
    rng = np.random.default_rng(0)
    field = rng.normal(0, 5, (7, 11, 2)).astype(dtype) if dtype == np.float16 else rng.integers(
        0, 256, (7, 11, 2), dtype=np.uint8)  # fmt: skip
    back = decode_flow_png(encode_flow_png(field), dtype)
    assert back.shape == field.shape and back.dtype == field.dtype
    np.testing.assert_array_equal(back.view(np.uint8), field.view(np.uint8))
    assert decode_flow_png(np.frombuffer(b"not a png", np.uint8), dtype) is None


def test_float16_png_layout(mixed, tmp_path):
    frames, flow8 = mixed
    out = tmp_path / "f16.h5"
    compute_shard(frames, out, {**TVL1, "storage": "float16", "layout": "png"}, progress=False)
    f16, f8 = FlowShard(out), FlowShard(flow8)
    got = f16.read_raw("portrait", [0, 1])
    assert got.dtype == np.float16 and got.shape == (2, 50, 30, 2)
    # uint8 storage is the same flow quantized (step 40/254 px)
    np.testing.assert_allclose(f16.read("portrait", [0, 1]), f8.read("portrait", [0, 1]), atol=20 / 127 / 2 + 1e-3)


def test_loaders_crop_every_size(mixed):
    frames, flow = mixed
    common = dict(frames=[str(frames)], flow=[str(flow)], split=None, flow_length=3, crop_size=24)
    train = ClipDataset(modalities=("rgb", "flow"), mode="train", segments=2, **common)
    for i in range(len(train)):
        item = train[i]
        assert item["rgb"].shape == (2, 3, 24, 24) and item["flow"].shape == (2, 6, 24, 24)
    test = ClipDataset(modalities=("rgb", "flow"), mode="test", test_frames=2, test_crops=10, **common)
    batch = torch.utils.data.default_collate([test[i] for i in range(len(test))])
    assert batch["rgb"].shape == (8, 10, 3, 24, 24) and batch["flow"].shape == (8, 10, 6, 24, 24)
    # the portrait square moves down 2 px/frame; a centre crop of 24 from 30 px wide keeps the scale
    v = list(test.videos["video_id"]).index("portrait")
    centre = test[v * 2]["flow"][4]  # crop 4 = the centre crop, unflipped; channels x0, y0, ...
    y = centre[1::2, 9:15, 9:15].median().item()
    assert y == pytest.approx(2.0, abs=0.5)


def test_decode_size_gives_one_frame_size(tmp_path):
    rows = []
    for vid, (h, w) in {"a": (36, 52), "b": (50, 30), "c": (33, 41)}.items():
        p = tmp_path / f"{vid}.avi"
        write_test_video(p, n=4, height=h, width=w, fourcc="MJPG")
        rows.append({"video_id": vid, "path": str(p), "label": 0, "class_name": "c", "split": "train"})
    out = tmp_path / "raw.h5"
    videos, _ = decode_shard(pd.DataFrame(rows), out, DecodeConfig(size=[48, 32]), progress=False)
    assert set(zip(videos.width, videos.height)) == {(48, 32)}
    assert FrameShard(out).read("b", [0]).shape == (1, 32, 48, 3)
    flow = tmp_path / "flow.h5"
    compute_shard(out, flow, TVL1, progress=False)
    assert FlowShard(flow).layout == "fixed"
    with pytest.raises(Exception, match="decode.size"):
        DecodeConfig(size=[48])
    with pytest.raises(Exception, match="set one of them"):
        DecodeConfig(size=[48, 32], short_side=32)


def test_empty_shard_gives_an_empty_flow_shard_in_one_line(mixed, tmp_path, capsys):
    frames = write_shard(tmp_path / "empty.h5", {})
    out = tmp_path / "empty-flow.h5"
    capsys.readouterr()
    assert main(["flow", "--params", json.dumps(TVL1), "--frames", str(frames), "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert any("empty.h5: no videos" in line for line in err) and not any("Traceback" in x for x in err)
    assert len(FlowShard(out).videos) == 0
    # an empty shard among others: the loaders skip it
    fr, fl = mixed
    ds = ClipDataset(frames=[str(frames), str(fr)], flow=[str(out), str(fl)], modalities=("rgb", "flow"),
                     split=None, flow_length=2, crop_size=16)  # fmt: skip
    assert len(ds) == len(VIDEOS)
    # and the flow examples figure takes its videos from the shards that have some
    from twostream.plots import PlotSettings, flow_examples

    flow_examples([frames, fr], [out, fl], tmp_path / "examples.png", PlotSettings(flow_examples=2))
    assert (tmp_path / "examples.png").stat().st_size > 0
    with pytest.raises(InputError, match="no video with flow to show"):
        flow_examples([frames], [out], tmp_path / "none.png", PlotSettings())


def test_truncated_clip_is_kept_and_listed(tmp_path):
    src = tmp_path / "full.avi"
    write_test_video(src, n=30, height=32, width=48, fourcc="MJPG")
    data = src.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    rows = pd.DataFrame([{"video_id": v, "path": str(p), "label": 0, "class_name": "c", "split": "train"}
                         for v, p in (("full", src), ("cut", cut))])  # fmt: skip
    videos, listed = decode_shard(rows, tmp_path / "f.h5", DecodeConfig(), progress=False)
    assert list(videos.video_id) == ["full", "cut"]
    n = int(videos.set_index("video_id").n_frames["cut"])
    assert 2 <= n < 30
    assert listed.to_dict("records") == [{
        "video_id": "cut", "path": str(cut), "status": "truncated", "declared_frames": 30, "decoded_frames": n,
        "error": f"{cut}: truncated: decoded {n} of the 30 frames its container declares"}]  # fmt: skip
    # the stricter setting makes it bad
    videos, listed = decode_shard(rows, tmp_path / "g.h5", DecodeConfig(on_bad_video="skip", max_missing_frames=2),
                                  progress=False)  # fmt: skip
    assert list(videos.video_id) == ["full"] and list(listed.status) == ["skipped"]
