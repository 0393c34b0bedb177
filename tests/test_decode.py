"""The decode stage: real encoded videos -> HDF5 frame shards, bad input, the CLI."""

from __future__ import annotations

import json
import os
import shutil

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import make_frames, write_test_video

from twostream import cli
from twostream.decode import DecodeConfig, decode_shard, gather_bad_lists, shard_rows
from twostream.errors import InputError
from twostream.index import assign_shards, shard_names, write_index
from twostream.store import FrameShard, read_params
from twostream.video import read_video, resize_short_side, target_size

XVID_MEAN_ERR = 5.0  # mean |decoded - generated| in grey levels for the smooth test frames


def _index(rows):
    return pd.DataFrame(rows, columns=["video_id", "path", "label", "class_name", "split"])


def _row(path, vid, label=0, cls="A", split="train"):
    return {"video_id": vid, "path": str(path), "label": label, "class_name": cls, "split": split}


@pytest.fixture
def two_videos(tmp_path):
    """An XVID and a lossless FFV1 video with their generating frames."""
    a = write_test_video(tmp_path / "A" / "a.avi", n=12, height=48, width=64, seed=1)
    b = write_test_video(tmp_path / "B" / "b.avi", n=9, height=48, width=64, seed=2, fourcc="FFV1")
    index = _index(
        [_row(tmp_path / "A" / "a.avi", "A/a", 0, "A"), _row(tmp_path / "B" / "b.avi", "B/b", 1, "B", "test")]
    )
    return index, {"A/a": a, "B/b": b}


def test_target_size():
    assert target_size(320, 240, 256) == (341, 256)
    assert target_size(240, 320, 256) == (256, 341)
    assert target_size(320, 240, 0) == (320, 240)
    assert target_size(320, 240, 120) == (160, 120)
    f = np.zeros((240, 320, 3), np.uint8)
    assert resize_short_side(f, 256).shape == (256, 341, 3)


def test_read_video_frames_match_generator(tmp_path):
    frames = write_test_video(tmp_path / "v.avi", n=10, height=48, width=64, seed=3)
    d = read_video(tmp_path / "v.avi")
    assert d.frames.shape == (10, 48, 64, 3) and d.frames.dtype == np.uint8
    assert d.fps == pytest.approx(25.0)
    err = np.abs(d.frames[..., ::-1].astype(int) - frames)
    assert err.mean() < XVID_MEAN_ERR
    # a wrong channel order would be far off: the channels differ by tens of levels
    assert np.abs(d.frames.astype(int) - frames).mean() > 4 * err.mean()


@pytest.mark.parametrize("codec", ["raw", "jpeg"])
def test_decode_shard_roundtrip(tmp_path, two_videos, codec):
    index, truth = two_videos
    cfg = DecodeConfig(codec=codec, jpeg_quality=95)
    out = tmp_path / "frames.h5"
    videos, bad = decode_shard(index, out, cfg, provenance={"shard": "shard-000"}, progress=False)
    assert bad.empty
    shard = FrameShard(out)
    assert shard.codec == codec
    assert list(shard.videos["video_id"]) == ["A/a", "B/b"]
    assert list(shard.videos["n_frames"]) == [12, 9]
    assert list(shard.videos["offset"]) == [0, 12]
    assert list(shard.videos["label"]) == [0, 1] and list(shard.videos["split"]) == ["train", "test"]
    assert list(shard.videos[["height", "width"]].itertuples(index=False, name=None)) == [(48, 64), (48, 64)]
    a = shard.read("A/a", range(12))
    assert a.shape == (12, 48, 64, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - truth["A/a"]).mean() < XVID_MEAN_ERR + (1.5 if codec == "jpeg" else 0)
    assert shard.read("A/a", []).shape == (0, 48, 64, 3)
    b = shard.read("B/b", [8, 0, 8])
    if codec == "raw":  # FFV1 is lossless and raw storage too: exact pixels
        np.testing.assert_array_equal(b, truth["B/b"][[8, 0, 8]])
    else:
        assert np.abs(b.astype(int) - truth["B/b"][[8, 0, 8]]).mean() < 2.0
    with h5py.File(out) as f:
        assert f.attrs["kind"] == "frames" and f.attrs["codec"] == codec and f.attrs["shard"] == "shard-000"
        assert read_params(f)["codec"] == codec and read_params(f)["jpeg_quality"] == 95
        assert "versions" in f.attrs
        ds = f["frames"] if codec == "raw" else f["jpeg"]
        assert ds.chunks[0] == 1 and ds.shape[0] == 21
        if codec == "raw":
            assert ds.compression == "lzf" and ds.chunks == (1, 48, 64, 3)


def test_decode_resizes_short_side(tmp_path):
    frames = write_test_video(tmp_path / "v.avi", n=6, height=48, width=64, fourcc="FFV1")
    out = tmp_path / "f.h5"
    decode_shard(_index([_row(tmp_path / "v.avi", "v")]), out, DecodeConfig(short_side=96), progress=False)
    shard = FrameShard(out)
    got = shard.read("v", range(6))
    assert got.shape == (6, 96, 128, 3)
    assert (shard.video("v").height, shard.video("v").width) == (96, 128)
    want = np.stack([cv2.resize(f, (128, 96), interpolation=cv2.INTER_LINEAR) for f in frames])
    assert np.abs(got.astype(int) - want).max() <= 1


def test_mixed_sizes_raw_fails_jpeg_works(tmp_path):
    write_test_video(tmp_path / "a.avi", n=4, height=48, width=64)
    write_test_video(tmp_path / "b.avi", n=4, height=64, width=64)
    index = _index([_row(tmp_path / "a.avi", "a"), _row(tmp_path / "b.avi", "b")])
    with pytest.raises(InputError, match=r"b\.avi: frames are 64x64 but this raw shard holds 64x48.*codec: jpeg"):
        decode_shard(index, tmp_path / "raw.h5", DecodeConfig(), progress=False)
    assert not (tmp_path / "raw.h5").exists()
    decode_shard(index, tmp_path / "j.h5", DecodeConfig(codec="jpeg"), progress=False)
    shard = FrameShard(tmp_path / "j.h5")
    assert shard.read("a", [0]).shape == (1, 48, 64, 3) and shard.read("b", [3]).shape == (1, 64, 64, 3)


# ----------------------------------------------------------------------------- bad input


def _good_bytes(tmp_path) -> bytes:
    write_test_video(tmp_path / "src.avi", n=30, height=48, width=64, seed=5)
    return (tmp_path / "src.avi").read_bytes()


def make_bad(kind: str, tmp_path):
    """A bad 'video' of the given kind and a regex its error must match."""
    p = tmp_path / f"bad_{kind}.avi"
    if kind == "zero_byte":
        p.write_bytes(b"")
        return p, r"empty file \(0 bytes\)"
    if kind == "missing":
        return p, r"no such file"
    if kind == "truncated":  # past the header: some frames decode
        b = _good_bytes(tmp_path)
        p.write_bytes(b[: len(b) * 8 // 10])
        return p, r"truncated or corrupt: decoded \d+ of the 30 frames"
    if kind == "truncated_early":  # inside the header: FFmpeg cannot open it
        b = _good_bytes(tmp_path)
        p.write_bytes(b[: len(b) // 3])
        return p, r"truncated: file has \d+ of the \d+ bytes its AVI header declares"
    if kind == "corrupt":
        b = bytearray(_good_bytes(tmp_path))
        rng = np.random.default_rng(0)
        lo, hi = len(b) // 4, len(b) * 3 // 4
        b[lo:hi] = rng.integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
        p.write_bytes(bytes(b))
        return p, r"truncated or corrupt"
    if kind == "text":
        p.write_text("this is not a video\n" * 50)
        return p, r"not a decodable video"
    if kind == "random_bytes":
        p.write_bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        return p, r"not a decodable video"
    if kind == "still_image":
        png = tmp_path / "img.png"
        cv2.imwrite(str(png), make_frames(1)[0])
        shutil.move(png, p)
        return p, r"only 1 frame decodes"
    if kind == "directory":
        p.mkdir()
        return p, r"unreadable: is a directory"
    if kind == "no_permission":
        p.write_bytes(_good_bytes(tmp_path))
        p.chmod(0)
        return p, r"unreadable \(Permission denied\)"
    raise AssertionError(kind)


BAD_KINDS = ["zero_byte", "missing", "truncated", "truncated_early", "corrupt", "text", "random_bytes",
             "still_image", "directory", "no_permission"]  # fmt: skip


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_video_one_line_error(tmp_path, kind, monkeypatch):
    p, pattern = make_bad(kind, tmp_path)
    if kind == "no_permission" and os.geteuid() == 0:  # root reads anything: make open() refuse as for a user
        real_open = open

        def refuse(file, *a, **kw):
            if str(file) == str(p):
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *a, **kw)

        monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(InputError) as e:
        read_video(p, max_missing_frames=0)  # strict: a shortfall against the header is bad
    msg = str(e.value)
    assert msg.startswith(str(p) + ": ") and "\n" not in msg
    assert __import__("re").search(pattern, msg), msg


def test_skip_bad_videos_leaves_them_out(tmp_path, two_videos):
    index, truth = two_videos
    bad_rows = []
    for kind in ("zero_byte", "truncated", "text"):
        p, _ = make_bad(kind, tmp_path)
        bad_rows.append(_row(p, f"bad/{kind}"))
    index = pd.concat([index.iloc[:1], _index(bad_rows), index.iloc[1:]], ignore_index=True)
    out = tmp_path / "f.h5"
    videos, bad = decode_shard(index, out, DecodeConfig(on_bad_video="skip", max_missing_frames=0), progress=False)
    assert list(bad["video_id"]) == ["bad/zero_byte", "bad/truncated", "bad/text"]
    assert set(bad["status"]) == {"skipped"}
    assert bad["error"].str.contains("empty file").iloc[0] and bad["error"].str.contains("truncated").iloc[1]
    shard = FrameShard(out)
    assert list(shard.videos["video_id"]) == ["A/a", "B/b"]
    assert list(shard.videos["offset"]) == [0, 12]
    np.testing.assert_array_equal(shard.read("B/b", [0]), truth["B/b"][[0]])
    with h5py.File(out) as f:
        assert f.attrs["n_skipped"] == 3


def test_fail_on_bad_video_leaves_no_file(tmp_path, two_videos):
    index, _ = two_videos
    p, _ = make_bad("truncated", tmp_path)
    index = pd.concat([index, _index([_row(p, "bad")])], ignore_index=True)
    out = tmp_path / "out" / "f.h5"
    with pytest.raises(InputError, match="bad_truncated.avi: truncated"):
        decode_shard(index, out, DecodeConfig(on_bad_video="fail", max_missing_frames=0), progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_gather_bad_lists(tmp_path):
    a = tmp_path / "shard-000.bad.csv"
    b = tmp_path / "shard-001.bad.csv"
    row = {"video_id": "x", "path": "p/x.avi", "status": "skipped", "declared_frames": "", "decoded_frames": "",
           "error": "p/x.avi: empty file"}  # fmt: skip
    pd.DataFrame([row]).to_csv(a, index=False)
    pd.DataFrame(columns=list(row)).to_csv(b, index=False)
    out = tmp_path / "bad_videos.csv"
    gather_bad_lists([a, b], out)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(got.columns) == ["shard", *row]
    assert got.to_dict("records") == [{"shard": "shard-000", **row}]
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="junk.csv: not a bad-video list"):
        gather_bad_lists([tmp_path / "junk.csv"], out)


# ----------------------------------------------------------------------------- CLI


def _write_dataset(tmp_path, n=5):
    rows = []
    for i in range(n):
        p = tmp_path / "vids" / f"v{i}.avi"
        write_test_video(p, n=4 + i, height=32, width=40, seed=i)
        rows.append(_row(p, f"c/v{i}", i % 2, f"c{i % 2}", "train" if i % 3 else "test"))
    idx = _index(rows)
    write_index(idx, tmp_path / "index.csv")
    (tmp_path / "index.json").write_text(json.dumps({"dataset": {"kind": "folder", "root": "vids"}}))
    return idx


def test_cli_decodes_every_shard_once(tmp_path):
    idx = _write_dataset(tmp_path, n=5)
    params = json.dumps({"shards": 3, "codec": "jpeg", "on_bad_video": "skip"})
    seen = []
    for shard in shard_names(3):
        out = tmp_path / "frames" / f"{shard}.h5"
        rc = cli.main(["decode", "--params", params, "--index", str(tmp_path / "index.csv"), "--shard", shard,
                       "--out", str(out), "--bad-list", str(tmp_path / "frames" / f"{shard}.bad.csv"), "--no-progress"])  # fmt: skip
        assert rc == 0
        s = FrameShard(out)
        assert set(s.videos["video_id"]) == set(shard_rows(idx, shard, 3)["video_id"])
        seen += list(s.videos["video_id"])
        for v in s.videos.itertuples():
            assert v.n_frames == 4 + int(v.video_id[-1])
        with h5py.File(out) as f:
            assert json.loads(f.attrs["dataset"]) == {"kind": "folder", "root": "vids"}
    assert sorted(seen) == sorted(idx["video_id"])
    assert (assign_shards(idx, 3).value_counts() > 0).all()


def test_cli_empty_shard(tmp_path):
    _write_dataset(tmp_path, n=2)
    out = tmp_path / "shard-003.h5"
    rc = cli.main(["decode", "--params", json.dumps({"shards": 4}), "--index", str(tmp_path / "index.csv"),
                   "--shard", "shard-003", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    s = FrameShard(out)
    assert len(s.videos) == 0


def test_cli_bad_video_one_line_exit_2(tmp_path, capsys):
    p, _ = make_bad("zero_byte", tmp_path)
    write_index(_index([_row(p, "bad")]), tmp_path / "index.csv")
    out = tmp_path / "shard-000.h5"
    rc = cli.main(["decode", "--params", json.dumps({"shards": 1}), "--index", str(tmp_path / "index.csv"),
                   "--shard", "shard-000", "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"twostream: error: {p}: empty file (0 bytes), not a video"
    assert not out.exists()


def test_cli_config_errors(tmp_path, capsys):
    _write_dataset(tmp_path, n=1)
    base = ["decode", "--index", str(tmp_path / "index.csv"), "--out", str(tmp_path / "x.h5")]
    assert cli.main(base + ["--params", '{"codec": "png"}', "--shard", "shard-000"]) == 2
    assert "decode.codec: 'png' is not one of raw, jpeg" in capsys.readouterr().err
    assert cli.main(base + ["--params", '{"shardz": 2}', "--shard", "shard-000"]) == 2
    assert "decode: unknown key(s) shardz" in capsys.readouterr().err
    assert cli.main(base + ["--params", '{"shards": 2}', "--shard", "shard-002"]) == 2
    assert "shard-002" in capsys.readouterr().err


@pytest.mark.parametrize("readers,prefetch", [(1, 1), (3, 1), (2, 4)])
def test_parallel_readers_keep_order_and_pixels(tmp_path, readers, prefetch):
    """Recycled frame buffers and parallel readers: exact pixels (lossless FFV1), index order."""
    truth, rows = {}, []
    for i in range(6):
        p = tmp_path / f"v{i}.mkv"
        truth[f"v{i}"] = write_test_video(p, n=3 + 2 * i, height=24, width=32, seed=i, fourcc="FFV1")
        rows.append(_row(p, f"v{i}"))
    rows.insert(2, _row(make_bad("text", tmp_path)[0], "bad"))
    out = tmp_path / "f.h5"
    cfg = DecodeConfig(readers=readers, prefetch=prefetch, on_bad_video="skip")
    videos, bad = decode_shard(_index(rows), out, cfg, progress=False)
    assert list(videos["video_id"]) == [f"v{i}" for i in range(6)] and list(bad["video_id"]) == ["bad"]
    shard = FrameShard(out)
    for vid, frames in truth.items():
        np.testing.assert_array_equal(shard.read(vid, range(len(frames))), frames)
