"""The synthetic action dataset: layout, determinism, known truth, and the codec-leak probe."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from twostream.config import ConfigError
from twostream.datasets import synthetic as syn

TINY = dict(size=32, frames=8, train_per_class=2, val_per_class=1, test_per_class=1, radius=3.0, speed=1.0,
            appearance_colours=["yellow", "cyan"], motions=["left", "rotate_cw", "zoom_in"],
            spatiotemporal_directions=["right"])


def decode(path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    out = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f[:, :, ::-1])
    cap.release()
    return np.stack(out)


def clean(**kw) -> syn.SyntheticConfig:
    """A config without nuisances, where the frames show the objects' motion directly."""
    base = dict(noise=0.0, distractors=0, background_speed=0.0, background_jitter=0.0, background_contrast=0.0)
    base.update(kw)
    return syn.make_config(base)


# --------------------------------------------------------------------------- config and classes


def test_defaults_match_schema_and_config_file():
    import yaml

    root = Path(__file__).resolve().parents[1]
    schema = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())
    props = schema["properties"]["synthetic"]["properties"]
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(syn.SyntheticConfig)}
    assert set(props) == set(defaults)
    for k, v in defaults.items():
        assert props[k]["default"] == v, k
        assert props[k]["description"], k
    cfg_file = yaml.safe_load((root / "config/config.yaml").read_text())["synthetic"]
    assert syn.make_config(cfg_file) == syn.SyntheticConfig()


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="unknown key.*colour_count"):
        syn.make_config({"colour_count": 3})
    with pytest.raises(ConfigError, match="synthetic.motions.*wobble"):
        syn.make_config({"motions": ["left", "wobble"]})
    with pytest.raises(ConfigError, match="synthetic.radius"):
        syn.make_config({"radius": 20.0, "size": 32})


def test_class_table_groups_and_factors():
    cfg = syn.SyntheticConfig()
    ct = syn.class_table(cfg)
    assert list(ct.label) == list(range(16))
    assert ct.group.value_counts().to_dict() == {"motion": 8, "appearance": 4, "spatiotemporal": 4}
    assert ct.class_name.is_unique and not ct.class_name.str.contains("_").any()
    st = ct[ct.group == "spatiotemporal"]
    assert set(zip(st.moving_colour, st.direction)) == {("red", "left"), ("red", "right"),
                                                        ("blue", "left"), ("blue", "right")}
    assert (st.moving_colour != st.still_colour).all()
    assert ct.set_index("class_name").loc["MotionRightFast", "speed"] == pytest.approx(2 * cfg.speed)


def test_spatiotemporal_colours_have_equal_grey_level():
    rgb = np.array([[syn.RED, syn.BLUE]], np.uint8)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[0].astype(int)
    assert abs(grey[0] - grey[1]) <= 1
    # and in rendered frames: same texture, same grey level on both discs
    cfg = clean(spatiotemporal_directions=["left"], appearance_colours=[], motions=[])
    clip = syn.render_clip(cfg, 0, 3)
    g = cv2.cvtColor(clip.frames[0], cv2.COLOR_RGB2GRAY).astype(float)
    hsv_hue = []
    means = []
    ys, xs = np.mgrid[0:cfg.size, 0:cfg.size]
    for k in (0, 1):
        c = clip.truth.centres[0, k]
        d = np.hypot(syn._wrap(xs - c[0], cfg.size), syn._wrap(ys - c[1], cfg.size))
        inside = d < clip.truth.radii[0, k] - 1
        means.append(g[inside].mean())
        hsv_hue.append(clip.frames[0][inside].mean(0))
    assert abs(means[0] - means[1]) < 2.0
    assert np.abs(hsv_hue[0] - hsv_hue[1]).max() > 60  # ... while the colours differ a lot


# --------------------------------------------------------------------------- determinism


def test_render_is_deterministic_and_seeded():
    cfg = syn.SyntheticConfig(size=32, frames=6, radius=3.0)
    a = syn.render_clip(cfg, 13, 42)
    b = syn.render_clip(cfg, 13, 42)
    c = syn.render_clip(cfg, 13, 43)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.truth.flow, b.truth.flow)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.dtype == np.uint8 and a.frames.shape == (6, 32, 32, 3)


def test_clip_seeds_do_not_depend_on_other_counts():
    t1 = syn.video_table(syn.SyntheticConfig(train_per_class=3, test_per_class=2))
    t2 = syn.video_table(syn.SyntheticConfig(train_per_class=5, test_per_class=9))
    m = t1.merge(t2, on="video_id", suffixes=("1", "2"))
    assert len(m) == len(t1)
    assert (m.seed1 == m.seed2).all()
    t4 = syn.video_table(syn.SyntheticConfig(train_per_class=3, test_per_class=2, motions=["up", "left"]))
    m4 = t1.merge(t4, on="video_id", suffixes=("1", "4"))
    assert set(m4.class_name1) == set(t4.class_name)  # the classes both have ...
    assert (m4.seed1 == m4.seed4).all()  # ... keep their clips although labels moved
    t3 = syn.video_table(syn.SyntheticConfig(seed=1, train_per_class=3, test_per_class=2))
    assert not (t3.seed.to_numpy() == t1.seed.to_numpy()).any()


def test_video_table_groups_follow_ucf101_split1():
    cfg = syn.SyntheticConfig(train_per_class=20, val_per_class=5, test_per_class=9)
    vt = syn.video_table(cfg)
    assert set(vt[vt.split == "test"].group) == set(range(1, 8))
    assert set(vt[vt.split == "val"].group) == set(range(8, 11))
    assert set(vt[vt.split == "train"].group) == set(range(11, 26))
    assert vt.video_id.is_unique
    parsed = vt.video_id.str.extract(r"^(\w+)/v_(\w+)_g(\d\d)_c(\d\d)$")
    assert (parsed[0] == vt.class_name).all() and (parsed[1] == vt.class_name).all()
    assert (parsed[2].astype(int) == vt.group).all() and (parsed[3].astype(int) == vt["clip"]).all()
    assert vt.groupby("class_name").size().eq(34).all()


def test_splits_have_own_seed_streams():
    """Train, val and test clips never share a seed; train clips keep the seeds of the two-split
    version (their rendering did not change), val clips take the stream of its old test clips, and
    the test clips are new: none of them was rendered before (so none was looked at while tuning)."""
    cfg = syn.SyntheticConfig(train_per_class=6, val_per_class=4, test_per_class=4)
    vt = syn.video_table(cfg)
    seeds = {s: set(vt[vt.split == s].seed) for s in syn.SPLITS}
    assert not (seeds["train"] & seeds["val"]) and not (seeds["train"] & seeds["test"])
    assert not (seeds["val"] & seeds["test"])
    import zlib

    def two_split_seed(name, split, i):  # the seed rule before the three-way split
        ss = np.random.SeedSequence([0, zlib.crc32(name.encode()), 0 if split == "train" else 1, i])
        return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))

    for split, old in (("train", "train"), ("val", "test")):
        part = vt[vt.split == split]
        idx = part.groupby("class_name").cumcount()  # round-robin order = clip index
        assert all(two_split_seed(n, old, int(i)) == s for n, i, s in zip(part.class_name, idx, part.seed))
    old_test = {two_split_seed(n, "test", i) for n in vt.class_name.unique() for i in range(200)}
    assert not seeds["test"] & old_test
    with pytest.raises(ConfigError, match="split"):
        syn.clip_seed(cfg, "MotionLeft", "validation", 0)


def test_group_layout_validated():
    with pytest.raises(Exception, match="val_groups"):
        syn.make_config({"groups": 10, "test_groups": 7, "val_groups": 3})
    with pytest.raises(Exception, match="val_per_class"):
        syn.make_config({"val_per_class": 0})


# --------------------------------------------------------------------------- known truth


@pytest.mark.parametrize("motion, expect", [("left", (-1, 0)), ("right", (1, 0)), ("up", (0, -1)),
                                            ("down", (0, 1)), ("right_fast", (2, 0))])
def test_translation_is_visible_in_frames(motion, expect):
    cfg = clean(motions=[motion], appearance_colours=[], spatiotemporal_directions=[], speed_jitter=0.0)
    clip = syn.render_clip(cfg, 0, 11)
    S = cfg.size
    # object pixels = where the frame differs from the flat background; follow their centroid on the
    # torus, starting from the true centre of frame 0
    c = clip.truth.centres[0, 0].copy()
    steps = []
    for f in clip.frames.astype(float):
        bg = np.median(f.reshape(-1, 3), 0)
        yy, xx = np.nonzero(np.abs(f - bg).sum(-1) > 30)
        new = c + np.array([syn._wrap(xx - c[0], S).mean(), syn._wrap(yy - c[1], S).mean()])
        steps.append(new - c)
        c = new
    v = np.mean(steps[1:], axis=0)
    assert v == pytest.approx(np.array(expect) * cfg.speed, abs=0.25)
    assert clip.truth.displacement.mean(0) == pytest.approx(np.array(expect) * cfg.speed, abs=1e-6)


@pytest.mark.parametrize("motion, sign", [("rotate_cw", 1), ("rotate_ccw", -1)])
def test_rotation_is_visible_in_frames(motion, sign):
    cfg = clean(motions=[motion], appearance_colours=[], spatiotemporal_directions=[], speed_jitter=0.0)
    clip = syn.render_clip(cfg, 0, 5)
    S = cfg.size
    c = clip.truth.centres[0, 0]
    assert np.allclose(clip.truth.centres[:, 0], c)  # the disc stays in place
    # bring the disc to the frame centre, rotate frame t by +-w around it, compare with frame t+1
    shift = np.round(S / 2 - c).astype(int)
    f = np.roll(clip.frames.astype(np.float32), (shift[1], shift[0]), axis=(1, 2))
    centre = (float(c[0] + shift[0]), float(c[1] + shift[1]))
    w = math.degrees(cfg.rotation_speed)
    errs = {}
    for name, ang in (("cw", -w), ("ccw", w)):  # cv2: positive angle = counter-clockwise on screen
        m = cv2.getRotationMatrix2D(centre, ang, 1.0)
        e = [np.abs(cv2.warpAffine(f[t], m, (S, S)) - f[t + 1])[S // 2 - 3:S // 2 + 4, S // 2 - 3:S // 2 + 4].mean()
             for t in range(cfg.frames - 1)]
        errs[name] = np.mean(e)
    good, bad = ("cw", "ccw") if sign > 0 else ("ccw", "cw")
    assert errs[good] < 0.5 * errs[bad]


def test_zoom_is_visible_in_frames():
    cfg = clean(motions=["zoom_in"], appearance_colours=[], spatiotemporal_directions=[])
    clip = syn.render_clip(cfg, 0, 9)
    f = clip.frames.astype(float)
    area = [(np.abs(x - np.median(x.reshape(-1, 3), 0)).sum(-1) > 30).sum() for x in f]
    assert all(b >= a for a, b in zip(area, area[1:]))
    ratio = (clip.truth.radii[-1, 0] / clip.truth.radii[0, 0]) ** 2
    assert area[-1] / area[0] == pytest.approx(ratio, rel=0.2)


def test_truth_flow_warps_frames():
    """frame[t+1](p + flow[t](p)) == frame[t](p) away from occlusions: the per-pixel truth is exact."""
    cfg = syn.make_config(dict(noise=0.0, object_jitter=0.2))
    cl = syn.class_table(cfg)
    S = cfg.size
    for label in cl.label[cl.motion.isin(["rotate", "zoom", "translate"])].to_list()[:12]:
        clip = syn.render_clip(cfg, int(label), 100 + label, cl)
        ys, xs = np.mgrid[0:S, 0:S].astype(np.float32)
        for t in (2, 7):
            fl = clip.truth.flow[t]
            # tile to 3x3 so that sampling across the torus edge works
            big = np.tile(clip.frames[t + 1].astype(np.float32), (3, 3, 1))
            warped = cv2.remap(big, xs + fl[..., 0] + S, ys + fl[..., 1] + S, cv2.INTER_CUBIC)
            zero = clip.frames[t + 1].astype(np.float32)
            # exclude pixels near object outlines (occlusion / anti-aliased edges)
            edge = cv2.dilate(cv2.morphologyEx(clip.truth.object_mask[t].astype(np.uint8), cv2.MORPH_GRADIENT,
                                               np.ones((3, 3), np.uint8)), np.ones((5, 5), np.uint8)) > 0
            ok = ~edge
            err = np.abs(warped - clip.frames[t])[ok].mean()
            err0 = np.abs(zero - clip.frames[t])[ok].mean()
            assert err < 2.5, (label, t, err)
            assert err < 0.5 * err0, (label, t, err, err0)


def test_single_frame_size_distribution_is_shared_in_motion_group():
    cfg = syn.SyntheticConfig(motions=["left", "zoom_in"], appearance_colours=[], spatiotemporal_directions=[],
                              size=32, radius=5.0, distractors=0)  # radius < size / 6
    cl = syn.class_table(cfg)
    rng = np.random.default_rng(0)
    radii = {0: [], 1: []}
    for lab in (0, 1):
        for i in range(150):
            clip = syn.render_clip(cfg, lab, 1000 + i, cl)
            radii[lab].append(clip.truth.radii[rng.integers(cfg.frames), 0])
    a, b = np.array(radii[0]), np.array(radii[1])
    se = math.sqrt(a.var() / len(a) + b.var() / len(b))
    assert abs(a.mean() - b.mean()) < 3 * se
    assert a.std() == pytest.approx(b.std(), rel=0.25)
    # while within a zoom clip the size grows, and a left clip keeps it
    z = syn.render_clip(cfg, 1, 7).truth.radii[:, 0]
    assert z[-1] / z[0] == pytest.approx(math.exp(cfg.zoom_rate * (cfg.frames - 1)))


def test_still_object_is_still_and_positions_uniform():
    cfg = syn.SyntheticConfig(appearance_colours=[], motions=[], size=48, distractors=0)
    cl = syn.class_table(cfg)
    moving, still = [], []
    for i in range(200):
        clip = syn.render_clip(cfg, i % 4, 500 + i, cl)
        tr = clip.truth
        assert tr.moving.tolist()[:2] == [True, False] and tr.kind[1] == "still"
        assert np.allclose(tr.centres[:, 1], tr.centres[0, 1])
        assert np.abs(tr.displacement).sum(1).min() > 0.5
        t = i % cfg.frames
        moving.append(tr.centres[t, 0])
        still.append(tr.centres[t, 1])
    # on the torus both are uniform: the means of x, y are S/2 +- sampling error for both
    for pos in (np.array(moving), np.array(still)):
        assert np.abs(pos.mean(0) - cfg.size / 2).max() < 3 * cfg.size / math.sqrt(12 * len(pos))


# --------------------------------------------------------------------------- writing videos


def test_generate_writes_ucf101_layout(tmp_path):
    cfg = syn.make_config(TINY)
    root = tmp_path / "ds"
    vt = syn.generate(cfg, root, progress=False)
    ci = [line.split() for line in (root / "classInd.txt").read_text().splitlines()]
    names = [n for _, n in ci]
    assert [int(i) for i, _ in ci] == list(range(1, len(names) + 1))
    assert names == list(syn.class_table(cfg).class_name)
    train = [line.split() for line in (root / "trainlist01.txt").read_text().splitlines()]
    val = [line.split() for line in (root / "vallist01.txt").read_text().splitlines()]
    test = (root / "testlist01.txt").read_text().splitlines()
    assert len(train) == len(names) * cfg.train_per_class and len(test) == len(names) * cfg.test_per_class
    assert len(val) == len(names) * cfg.val_per_class
    first_train = cfg.test_groups + cfg.val_groups
    for listed, lo, hi in ((train, first_train + 1, cfg.groups), (val, cfg.test_groups + 1, first_train)):
        for path, lab in listed:
            cls = path.split("/")[0]
            assert names[int(lab) - 1] == cls and (root / path).stat().st_size > 0
            assert lo <= int(path.split("_g")[1][:2]) <= hi
    for path in test:
        assert (root / path).is_file() and int(path.split("_g")[1][:2]) <= cfg.test_groups
    train_p, val_p = {p for p, _ in train}, {p for p, _ in val}
    assert train_p.isdisjoint(test) and val_p.isdisjoint(test) and train_p.isdisjoint(val_p)
    classes = pd.read_csv(root / "classes.csv", keep_default_na=False)
    assert {"label", "class_name", "group", "colour", "motion", "direction", "speed", "moving_colour",
            "moving_rgb", "still_colour", "still_rgb"} <= set(classes.columns)
    assert list(classes.label) == list(range(len(names)))
    assert pd.read_csv(root / "videos.csv").video_id.tolist() == vt.video_id.tolist()
    # XVID in the AVI stream header, frames decode back to the rendered ones
    head = (root / test[0]).read_bytes()[:512]
    assert head[:4] == b"RIFF" and b"XVID" in head
    assert not list(tmp_path.glob(".ds.*"))  # no temp folders left


def test_decoded_frames_match_rendered(tmp_path):
    cfg = syn.SyntheticConfig(train_per_class=1, test_per_class=1)
    vt = syn.video_table(cfg)
    for vid in vt.video_id[::7][:3]:
        clip = syn.render_video(cfg, vid, vt)
        syn.write_video(tmp_path / "v.avi", clip.frames, cfg.fps, cfg.fourcc)
        dec = decode(tmp_path / "v.avi")
        assert dec.shape == clip.frames.shape
        err = np.abs(dec.astype(float) - clip.frames)
        psnr = 10 * math.log10(255 ** 2 / (err ** 2).mean())
        assert err.mean() < 8 and psnr > 27, (vid, err.mean(), psnr)
        other = syn.render_clip(cfg, int(vt.label.iloc[0]), 999).frames
        assert np.abs(dec.astype(float) - other).mean() > 2 * err.mean()  # the comparison can fail


def test_interrupted_generate_leaves_no_dataset(tmp_path, monkeypatch):
    cfg = syn.make_config(TINY)
    root = tmp_path / "ds"
    calls = {"n": 0}
    real = syn.write_video

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(syn.write, "write_video", flaky)  # the module whose generate() calls it
    with pytest.raises(KeyboardInterrupt):
        syn.generate(cfg, root, progress=False)
    assert not root.exists() and not list(tmp_path.iterdir())
    # an old complete dataset survives an interrupted regeneration unchanged
    monkeypatch.setattr(syn.write, "write_video", real)
    syn.generate(cfg, root, progress=False)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    calls["n"] = 0
    monkeypatch.setattr(syn.write, "write_video", flaky)
    with pytest.raises(KeyboardInterrupt):
        syn.generate(dataclasses.replace(cfg, seed=5), root, progress=False)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_cli_params_and_errors(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "twostream.cli", "synth", "--params", json.dumps(TINY), "--out", str(out),
           "--threads", "2", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "classInd.txt").exists()
    # same output with 1 and 2 worker processes
    again = syn.generate(syn.make_config(TINY), tmp_path / "ds1", progress=False)
    for p in again.path[:4]:
        assert np.array_equal(decode(out / p), decode(tmp_path / "ds1" / p))
    bad = [sys.executable, "-m", "twostream.cli", "synth", "--params", '{"noise": -1}', "--out", str(tmp_path / "x")]
    r = subprocess.run(bad, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "synthetic.noise" in r.stderr
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- codec leak


def _disc_features(grey: np.ndarray, frame: np.ndarray, centre, radius, S):
    ys, xs = np.mgrid[0:S, 0:S]
    d = np.hypot(syn._wrap(xs - centre[0], S), syn._wrap(ys - centre[1], S))
    lap = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    gm = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    inside = d < radius - 1
    rim = (d > radius - 1.5) & (d < radius + 1.5)
    return [lap[inside].mean(), gm[inside].mean(), gm[rim].mean(), grey[inside].std(),
            frame[inside].std(axis=0).mean()]


def leak_probe(cfg: syn.SyntheticConfig, n_clips: int, tmp: Path, seed0: int = 50_000):
    """Accuracy of a single-frame classifier predicting "which colour moves" on decoded frames.

    The probe is deliberately strong: it is told where the two discs are (from the truth) and gets
    features of each disc in one decoded P-frame (texture contrast, sharpness, rim gradient: what a
    codec changes), and a logistic regression learns red-minus-blue feature differences. Trained on
    even clips, tested on odd ones. Returns (accuracy, sigma, n_test_clips); sigma is the clip-level
    (cluster) standard error, since frames of one clip are not independent.
    """
    cl = syn.class_table(cfg)
    assert set(cl.group) == {"spatiotemporal"}
    X, Y, C = [], [], []
    for i in range(n_clips):
        clip = syn.render_clip(cfg, i % len(cl), seed0 + i, cl)
        syn.write_video(tmp, clip.frames, cfg.fps, cfg.fourcc)
        dec = decode(tmp)
        red = 0 if tuple(clip.truth.colours[0]) == syn.RED else 1
        for t in range(cfg.frames):
            if t % 12 == 0:  # OpenCV's FFmpeg writer puts a key frame every 12 frames
                continue
            g = cv2.cvtColor(dec[t], cv2.COLOR_RGB2GRAY).astype(np.float32)
            f = [_disc_features(g, dec[t], clip.truth.centres[t, k], clip.truth.radii[t, k], cfg.size)
                 for k in (red, 1 - red)]
            X.append(np.subtract(*f))
            Y.append(float(red == 0))
            C.append(i)
    X, Y, C = np.array(X), np.array(Y), np.array(C)
    tr = C % 2 == 0
    Z = (X - X[tr].mean(0)) / (X[tr].std(0) + 1e-9)
    w, b = np.zeros(Z.shape[1]), 0.0
    for _ in range(400):
        p = 1 / (1 + np.exp(-(Z[tr] @ w + b)))
        w -= 0.5 * (Z[tr].T @ (p - Y[tr]) / tr.sum() + 1e-3 * w)
        b -= 0.5 * (p - Y[tr]).mean()
    correct = ((Z[~tr] @ w + b > 0) == (Y[~tr] > 0.5)).astype(float)
    per_clip = pd.Series(correct).groupby(C[~tr]).mean()
    sigma = max(per_clip.std(ddof=1) / math.sqrt(len(per_clip)), 0.5 / math.sqrt(len(correct)))
    return correct.mean(), sigma, len(per_clip)


def test_codec_leak_probe(tmp_path):
    st = dict(appearance_colours=[], motions=[], frames=13)
    # positive control: with a still background the still disc is copied unchanged by the P-frames
    # while the moving one is re-coded -- the probe must see that leak
    leaky = syn.make_config(dict(st, background_speed=0.0, background_jitter=0.0))
    acc, sigma, n = leak_probe(leaky, 150, tmp_path / "p.avi")
    assert acc > 0.5 + 3 * sigma, (acc, sigma, n)
    # the default design (the background pans, so both discs move relative to it): chance + sampling error
    cfg = syn.make_config(st)
    acc, sigma, n = leak_probe(cfg, 400, tmp_path / "p.avi")
    print(f"codec-leak probe on the default design: {acc:.3f} +- {sigma:.3f} ({n} test clips)")
    assert acc <= 0.5 + 3 * sigma, (acc, sigma, n)
