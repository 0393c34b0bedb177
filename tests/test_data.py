"""Snippet sampling rule, crops/flips of flow, test protocol, shard errors."""

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from helpers_streams import SPEED, write_shards
from twostream.data import (
    ClipDataset, CropBox, apply_crop, eval_crop_boxes, num_positions, segment_positions,
    snippet_indices, uniform_positions,
)
from twostream.errors import InputError
from twostream.store import FlowShard, FrameShard, StoreError

torch.set_num_threads(1)
QSTEP = 20.0 / 127  # one quantization step of the stored flow


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), train_per_class=4, test_per_class=2, short_videos=2)


def test_positions_rule_any_length():
    L = 10
    assert num_positions(16, 15, True, L) == 6
    assert num_positions(16, 15, False, L) == 16
    for n_flow in (0, 1, 5, 9, 10):  # shorter than L + 1 frames, or exactly L + 1
        assert num_positions(n_flow + 1, n_flow, True, L) == 1
    frame, fields = snippet_indices(0, 4, 3, L, True)
    assert fields.tolist() == [0, 1, 2] + [2] * 7  # last field repeated
    assert frame == 3  # middle of the stack (5) clamped to the last frame
    frame, fields = snippet_indices(0, 1, 0, 3, True)
    assert fields.tolist() == [0, 0, 0] and frame == 0
    assert snippet_indices(4, 16, 15, L, False)[0] == 4
    assert snippet_indices(4, 16, 15, L, True)[0] == 9


def test_segment_and_uniform_positions():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = segment_positions(30, 3, rng)
        assert 0 <= p[0] < 10 <= p[1] < 20 <= p[2] < 30
    assert segment_positions(30, 3).tolist() == [4, 14, 24]  # centres
    assert segment_positions(1, 3, rng).tolist() == [0, 0, 0]
    assert segment_positions(2, 3, rng).tolist() == [0, 0, 1]
    assert uniform_positions(100, 25).tolist() == list(range(2, 100, 4))
    u = uniform_positions(6, 25)
    assert u.min() == 0 and u.max() == 5 and np.all(np.diff(u) >= 0)


def test_flip_negates_flow_x_and_mirrors():
    img = np.zeros((4, 4, 4), np.float32)  # 2 flow fields: x0, y0, x1, y1
    img[:, 0, 0::2] = 3.0  # left column moves right
    img[..., 1::2] = 1.0
    out = apply_crop(img, CropBox(0, 0, 4, 4, flip=True), 4, is_flow=True)
    assert np.all(out[:, 3, 0::2] == -3.0) and np.all(out[:, :3, 0::2] == 0)
    assert np.all(out[..., 1::2] == 1.0)  # y unchanged
    rgb = np.arange(16, dtype=np.uint8).reshape(4, 4, 1).repeat(3, 2)
    assert np.array_equal(apply_crop(rgb, CropBox(0, 0, 4, 4, True), 4, False), rgb[:, ::-1])


def test_resize_scales_flow_vectors():
    img = np.zeros((8, 8, 2), np.float32)
    img[..., 0], img[..., 1] = 1.5, -1.0
    out = apply_crop(img, CropBox(2, 2, 4, 2), 8, is_flow=True)  # x2 in width, x4 in height
    assert out.shape == (8, 8, 2)
    np.testing.assert_allclose(out[..., 0], 3.0, rtol=1e-5)
    np.testing.assert_allclose(out[..., 1], -4.0, rtol=1e-5)


def test_ten_crops():
    boxes = eval_crop_boxes(40, 50, 32, 10)
    assert len(boxes) == 10 and sum(b.flip for b in boxes) == 5
    assert (boxes[4].x, boxes[4].y) == (9, 4)
    with pytest.raises(InputError, match="1 or 10"):
        eval_crop_boxes(40, 50, 32, 5)


def test_train_items_true_flow_and_shapes(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("rgb", "flow"), "train", "train", segments=3, flow_length=3, crop_size=32,
                     scales=(1.0,), flip=False)
    assert ds.num_classes == 4 and ds.class_names == ["red", "blue", "right", "left"]
    for i in range(len(ds)):
        it = ds[i]
        assert it["rgb"].shape == (3, 3, 32, 32) and it["flow"].shape == (3, 6, 32, 32)
        assert 0 <= float(it["rgb"].min()) and float(it["rgb"].max()) <= 1
        name = ds.videos.class_name[i]
        x, y = it["flow"][:, 0::2], it["flow"][:, 1::2]
        if name == "right":  # de-quantized px/frame: +SPEED on the object, 0 elsewhere
            assert abs(float(x.max()) - SPEED) <= QSTEP / 2 and float(y.abs().max()) == 0
            assert float(x.min()) == 0
        if name == "left":
            assert abs(float(x.min()) + SPEED) <= QSTEP / 2


def test_flip_in_dataset_turns_right_into_left(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("flow",), "train", "train", flow_length=3, crop_size=32, scales=(1.0,), flip=True)
    right = [i for i in range(len(ds)) if ds.videos.class_name[i] == "right"]
    signs = set()
    for e in range(6):
        ds.set_epoch(e)
        for i in right:
            x = ds[i]["flow"][:, 0::2]
            signs.add(float(torch.sign(x.sum())))
    assert signs == {1.0, -1.0}


def test_short_videos_sample(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("rgb", "flow"), "train", "train", segments=3, flow_length=3, crop_size=32)
    short = ds.videos.index[ds.videos.n_frames == 2]
    assert len(short) == 2
    for i in short:
        it = ds[i]
        f = it["flow"]
        assert f.shape == (3, 6, 32, 32)
        for k in (1, 2):  # the single field repeated over the stack
            torch.testing.assert_close(f[:, 2 * k : 2 * k + 2], f[:, 0:2])


def test_deterministic_per_epoch_and_workers(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("rgb", "flow"), "train", "train", flow_length=3, crop_size=24, seed=3)
    a = ds[5]
    torch.testing.assert_close(ds[5]["flow"], a["flow"])
    ds.set_epoch(1)
    assert not torch.equal(ds[5]["rgb"], a["rgb"])
    ds.set_epoch(0)
    b0 = next(iter(DataLoader(ds, batch_size=8)))
    b2 = next(iter(DataLoader(ds, batch_size=8, num_workers=2)))
    torch.testing.assert_close(b0["flow"], b2["flow"])
    torch.testing.assert_close(b0["rgb"], b2["rgb"])


def test_test_protocol_items(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("rgb", "flow"), "test", "test", flow_length=3, crop_size=24, test_frames=25,
                     test_crops=10)
    assert len(ds) == 8 * 25
    it = ds[26]
    assert it["video"] == 1 and it["rgb"].shape == (10, 3, 24, 24) and it["flow"].shape == (10, 6, 24, 24)
    # crops 5..9 are the mirrored crops 0..4, flow x negated
    torch.testing.assert_close(it["flow"][5:, 0::2], -it["flow"][:5, 0::2].flip(-1))
    torch.testing.assert_close(it["rgb"][5:], it["rgb"][:5].flip(-1))


def test_a_subset_of_videos_reads_its_own_clips(shards):
    """Assigning a subset (clip_statistics keeps a few clips per class) re-indexes the items:
    item i reads row i of the new table, whose flow has that row's class's motion."""
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("flow",), "train", "test", flow_length=3, crop_size=32, test_frames=1)
    ds.videos = ds.videos[ds.videos.class_name.isin(["left", "right"])].iloc[::-1]
    assert list(ds.videos.index) == list(range(len(ds.videos))) and len(ds) == len(ds.videos) > 2
    for i in range(len(ds)):
        it = ds[i]
        assert it["label"] == ds.videos.label[i]
        sign = float(torch.sign(it["flow"][:, 0::2].sum()))
        assert sign == (1.0 if ds.videos.class_name[i] == "right" else -1.0)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_a_split_held_in_memory_gives_the_same_items(shards, mode):
    fr, fl = shards
    kw = dict(flow_length=3, crop_size=24, segments=2, test_frames=3, seed=1)
    mem = ClipDataset(fr, fl, ("rgb", "flow"), "train", mode, **kw)
    disk = ClipDataset(fr, fl, ("rgb", "flow"), "train", mode, preload_mb=0, **kw)
    assert 0 < mem.split_mb() < 1
    for i in range(len(mem)):
        a, b = mem[i], disk[i]
        assert a["label"] == b["label"] and a["video"] == b["video"]
        for m in ("rgb", "flow"):
            assert torch.equal(a[m], b[m])
    assert set(mem._memory) == {"rgb", "flow"} and disk._memory == {}


def test_whole_videos_read_in_runs_equal_the_per_video_reads(shards):
    """read_videos (what a split held in memory reads: one slice per run of consecutive
    videos) returns each video's rows exactly as read() and read_raw() do, in any order of
    ids, with gaps between the runs; an unknown id names the shard."""
    fr, fl = shards
    for shard in (FrameShard(fr[0]), FlowShard(fl[0])):
        ids = list(shard.videos.video_id)
        pick = ids[::-1][:3] + ids[-1:-2:-1] + ids[4:6] if len(ids) > 6 else ids[::-1]
        pick = list(dict.fromkeys(pick))  # a gap (ids 3) between runs, reversed order
        got = shard.read_videos(pick)
        assert list(got) == pick or set(got) == set(pick)
        for v in pick:
            n = int(shard.video(v).n_frames)
            want = shard.read(v, range(n)) if shard.kind == "frames" else shard.read_raw(v, range(n))
            assert got[v].shape == want.shape and got[v].dtype == want.dtype
            assert np.array_equal(got[v], want)
        with pytest.raises(StoreError, match=r"shard-000\.h5.*no video 'nope'"):
            shard.read_videos(["nope"])


def test_upscale_small_frames_for_test(shards):
    fr, fl = shards
    ds = ClipDataset(fr, fl, ("flow",), "test", "test", flow_length=3, crop_size=64, test_frames=2)
    right = int(np.flatnonzero(ds.videos.class_name == "right")[0])
    f = ds[2 * right]["flow"]
    assert f.shape == (1, 6, 64, 64)
    assert abs(float(f[:, 0::2].max()) - 2 * SPEED) < 0.2  # 32 -> 64 doubles px/frame


def test_errors(shards, tmp_path):
    fr, fl = shards
    with pytest.raises(StoreError, match="shard-000.h5"):
        ClipDataset(fl[:1], (), ("rgb",))  # a flow shard given as frames
    with pytest.raises(StoreError, match="nope.h5"):
        ClipDataset([str(tmp_path / "nope.h5")], (), ("rgb",))
    with pytest.raises(InputError, match="flow shards"):
        ClipDataset(fr, (), ("flow",))
    with pytest.raises(InputError, match="split 'validation'"):
        ClipDataset(fr, fl, ("rgb",), split="validation")
    with pytest.raises(StoreError, match="no flow"):
        ClipDataset(fr, fl[:1], ("rgb", "flow"))
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="bad.h5.*videos"):
        ClipDataset([str(bad)], (), ("rgb",))


@pytest.mark.parametrize("dtype,C", [(np.uint8, 2), (np.float32, 2), (np.float16, 2), (np.uint8, 3)])
def test_stack_channels_layout(dtype, C):
    from twostream.data import _stack_channels

    a = (np.random.default_rng(0).random((5, 7, 9, C)) * 100).astype(dtype)
    out = _stack_channels(a)
    assert out.shape == (7, 9, 5 * C) and out.dtype == dtype
    assert np.array_equal(out, a.transpose(1, 2, 0, 3).reshape(7, 9, 5 * C))

