"""Findings 2 and 3: unit kinds, the invariance index, probe clips and the findings sentences."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from twostream.analysis import findings as F
from twostream.analysis import invariance as INV
from twostream.analysis import probes as P
from twostream.analysis import units as UN
from twostream.analysis.stage import judge_unit, make_config, untrained
from twostream.cli import main as cli
from twostream.config import ConfigError
from twostream.datasets import synthetic as S

torch.set_num_threads(1)

CFG = S.SyntheticConfig(size=32, frames=8, radius=4.0, speed=1.5, speed_jitter=0.0, texture_period=4.0,
                        appearance_colours=["yellow", "cyan"], motions=["left", "right", "up", "right_fast"],
                        spatiotemporal_directions=["left", "right"], distractors=1, noise=0.0)
CLASSES = S.class_table(CFG)
LABEL = {n: int(l) for l, n in zip(CLASSES.label, CLASSES.class_name)}


# --------------------------------------------------------------------------- unit kinds


def _hand_built_network():
    """A linear layer on the one-hot class code: unit 0 wired to RedMovesLeft only, unit 1 to the
    classes moving right, unit 2 to nothing (silent), unit 3 to two unrelated classes."""
    K = len(CLASSES)
    w = torch.zeros(4, K)
    w[0, LABEL["RedMovesLeft"]] = 1.0
    for n in ("MotionRight", "MotionRightFast", "RedMovesRight", "BlueMovesRight"):
        w[1, LABEL[n]] = 1.0
    w[3, LABEL["ColourYellow"]] = 1.0
    w[3, LABEL["MotionUp"]] = 1.0
    net = torch.nn.Linear(K, 4)
    with torch.no_grad():
        net.weight.copy_(w)
        net.bias.fill_(0.1)
    return net


def _class_means(net, noise=0.05, n=20):
    rng = torch.Generator().manual_seed(0)
    K = len(CLASSES)
    labels = torch.arange(K).repeat_interleave(n)
    x = torch.nn.functional.one_hot(labels, K).float() + noise * torch.randn(len(labels), K, generator=rng)
    with torch.no_grad():
        y = net(x).numpy()
    return np.stack([y[labels.numpy() == k].mean(0) for k in range(K)], 1)


def test_factor_sets_follow_classes_csv():
    f = UN.factor_sets(CLASSES)
    assert f["direction=right"] == {LABEL[n] for n in ("MotionRight", "MotionRightFast", "RedMovesRight",
                                                       "BlueMovesRight")}
    assert f["moving_colour=red"] == {LABEL["RedMovesLeft"], LABEL["RedMovesRight"]}
    assert not any(k.endswith("=random") for k in f)


def test_unit_kinds_of_a_hand_built_network():
    means = _class_means(_hand_built_network())
    uk = UN.classify(means, CLASSES.label.to_numpy(), UN.factor_sets(CLASSES))
    assert list(uk.kind) == ["specific", "generic", "silent", "other"]
    assert uk.top_class[0] == LABEL["RedMovesLeft"]
    assert uk.factor[1] == "direction=right" and uk.precision[1] == 1.0 and uk.recall[1] == 1.0


def test_generic_needs_the_stated_level():
    """Dropping one of the four rightward classes: recall 3/4 is generic at level 0.75, not at 0.8."""
    net = _hand_built_network()
    with torch.no_grad():
        net.weight[1, LABEL["BlueMovesRight"]] = 0.0
    means = _class_means(net)
    labels = CLASSES.label.to_numpy()
    assert UN.classify(means, labels, UN.factor_sets(CLASSES), generic_level=0.75).kind[1] == "generic"
    assert UN.classify(means, labels, UN.factor_sets(CLASSES), generic_level=0.8).kind[1] == "other"


def test_unit_check_judges_direction_and_colour_and_gates_a_still_input():
    """A unit's optimised input shows a direction or a colour factor as verify judges class
    units; a flow of 0.002 px/frame (pointing the right way) or a flat image shows nothing."""
    from twostream.visualize.stage import make_config as vis_config

    verify = vis_config({}).verify
    classes = pd.DataFrame({"label": [0, 1], "moving_colour": ["red", "blue"],
                            "moving_rgb": ["190 40 40", "20 90 230"]})
    colours = {0: (190.0, 40.0, 40.0), 1: (20.0, 90.0, 230.0)}
    flow = np.zeros((4, 32, 32, 2), np.float32)
    flow[:, 10:20, 10:20, 0] = 1.0  # a patch moving right at 1 px/frame
    assert judge_unit("direction=right", None, flow, classes, colours, verify)[:2] == ("direction", True)
    assert judge_unit("direction=left", None, flow, classes, colours, verify)[:2] == ("direction", False)
    judged, ok, d = judge_unit("direction=right", None, flow * 0.002, classes, colours, verify)
    assert (judged, ok) == ("direction", False) and d["projection"] > 0 and d["flow_top"] < verify.min_flow
    img = np.full((32, 32, 3), 0.5, np.float32)
    img[8:24, 8:24] = np.array([190, 40, 40]) / 255.0  # a red disc-like patch on grey
    assert judge_unit("moving_colour=red", img, None, classes, colours, verify)[:2] == ("colour", True)
    assert judge_unit("moving_colour=blue", img, None, classes, colours, verify)[:2] == ("colour", False)
    faint = 0.5 + (img - 0.5) * 0.02  # the same hue, almost no contrast: below min_image_std
    assert judge_unit("moving_colour=red", faint, None, classes, colours, verify)[:2] == ("colour", False)
    assert judge_unit("group=motion", img, flow, classes, colours, verify) == ("", None, {})


def test_untrained_control_is_reinitialised_and_seeded():
    net = _hand_built_network()
    a, b = untrained(net, 0), untrained(net, 0)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, net.weight)
    uk = UN.classify(_class_means(a), CLASSES.label.to_numpy(), UN.factor_sets(CLASSES))
    assert "generic" not in set(uk.kind[:2])  # the wiring is gone


def test_kind_fractions_have_intervals():
    df = pd.DataFrame(dict(model="m", network="trained", layer="res5", depth=5, kind=["specific"] * 3 + ["other"]))
    fr = UN.kind_fractions(df).set_index("kind")
    assert fr.loc["specific", "fraction"] == 0.75 and fr.loc["specific", "lo"] < 0.75 < fr.loc["specific", "hi"]
    assert fr.loc["silent", "count"] == 0


# --------------------------------------------------------------------------- probe clips


def test_speed_probe_moves_that_many_px_per_frame():
    label = LABEL["MotionRight"]
    for s in (0.5, 1.0, 3.0):
        clip = P.render_probe(CFG, label, 11, P.ProbeFactors(speed=s, centre=(0.5, 0.5)), CLASSES)
        np.testing.assert_allclose(clip.truth.displacement, [[s * CFG.speed, 0.0]] * (CFG.frames - 1), atol=1e-9)
        # ground-truth flow inside the disc (away from its rim) is the probe's speed
        t = P.middle_snippet(CFG.frames, 3)
        c = clip.truth.centres[t, 0]
        yy, xx = np.mgrid[: CFG.size, : CFG.size]
        inner = np.hypot(xx - c[0], yy - c[1]) < CFG.radius * 0.5
        np.testing.assert_allclose(clip.truth.flow[t][inner], [[s * CFG.speed, 0.0]] * int(inner.sum()), atol=1e-4)
        x = P.clip_inputs(clip, ("flow",), 3, CFG.size)
        assert x["flow"].shape == (6, CFG.size, CFG.size)
        assert abs(float(x["flow"][0][torch.from_numpy(inner)].mean()) - s * CFG.speed) < 0.1  # quantized


def test_probe_varies_one_factor_only():
    """Texture phase and colour change the main object only; position puts it where asked."""
    label = LABEL["MotionUp"]
    a = P.render_probe(CFG, label, 5, P.ProbeFactors(phase=0.0, centre=(0.5, 0.5)), CLASSES)
    b = P.render_probe(CFG, label, 5, P.ProbeFactors(phase=0.5, centre=(0.5, 0.5)), CLASSES)
    c = P.render_probe(CFG, label, 5, P.ProbeFactors(colour=S.RED, centre=(0.5, 0.5)), CLASSES)
    # pixels of the main object (with its antialiased rim): within radius + 1 px of its centre
    yy, xx = np.mgrid[: CFG.size, : CFG.size]
    cen, r = a.truth.centres[:, 0], a.truth.radii[:, 0]
    wrap = lambda d: (d + CFG.size / 2) % CFG.size - CFG.size / 2
    main = np.hypot(wrap(xx[None] - cen[:, 0, None, None]), wrap(yy[None] - cen[:, 1, None, None])) < r[:, None, None] + 1
    diff_b = np.abs(a.frames.astype(int) - b.frames.astype(int)).max(-1) > 0
    diff_c = np.abs(a.frames.astype(int) - c.frames.astype(int)).max(-1) > 0
    assert diff_b.any() and diff_c.any()
    assert not (diff_b & ~main).any() and not (diff_c & ~main).any()
    np.testing.assert_array_equal(a.truth.flow, c.truth.flow)
    p = P.render_probe(CFG, label, 5, P.ProbeFactors(centre=(0.25, 0.75)), CLASSES)
    mid = (CFG.frames - 1) // 2
    if (CFG.frames - 1) % 2 == 0:
        np.testing.assert_allclose(p.truth.centres[mid, 0], [0.25 * CFG.size, 0.75 * CFG.size], atol=1e-9)
    else:
        np.testing.assert_allclose(p.truth.centres[mid : mid + 2, 0].mean(0), [0.25 * CFG.size, 0.75 * CFG.size],
                                   atol=1e-9)
    r = P.render_probe(CFG, label, 5, P.ProbeFactors(radius=1.5), CLASSES)
    q = P.render_probe(CFG, label, 5, P.ProbeFactors(), CLASSES)
    np.testing.assert_allclose(r.truth.radii[:, 0], 1.5 * q.truth.radii[:, 0])


def test_probe_plan_separates_speed_where_it_matters():
    sets = {s.factor: s for s in P.probe_plan(CLASSES, CFG, [0.5, 1, 2], [0.3], [1.0], [0.0], ["grey", "red"])}
    assert set(sets["speed"].labels) == {LABEL["MotionLeft"], LABEL["MotionUp"]}
    assert sets["speed_right"].labels == [LABEL["MotionRight"]]
    assert set(sets["colour"].labels) == set(CLASSES[CLASSES.group == "motion"].label)
    assert len(sets["base"].labels) == len(CLASSES)


# --------------------------------------------------------------------------- the invariance index


def _flow_units(x: torch.Tensor) -> np.ndarray:
    """Two hand-built motion units on a flow stack (2L, H, W): the sign of the mean horizontal
    flow of the moving pixels (direction, not speed) and the mean flow magnitude (speed)."""
    fx, fy = x[0::2], x[1::2]
    mag = torch.hypot(fx, fy)
    moving = mag > 0.25
    direction = float(torch.sign(fx[moving].mean())) if moving.any() else 0.0
    return np.array([direction, float(mag[moving].mean()) if moving.any() else 0.0])


def test_invariance_index_of_hand_built_units():
    speeds = [0.5, 1.0, 2.0, 3.0]
    labels = [LABEL["MotionLeft"], LABEL["MotionRight"]]
    cfg = S.SyntheticConfig(**{**CFG.__dict__, "distractors": 0, "background_jitter": 0.0})
    resp = np.zeros((2, len(labels), len(speeds)))
    base = np.zeros((2, len(labels)))
    for ci, lab in enumerate(labels):
        for li, s in enumerate(speeds):
            clip = P.render_probe(cfg, lab, 3, P.ProbeFactors(speed=s, centre=(0.5, 0.5)), CLASSES)
            resp[:, ci, li] = _flow_units(P.clip_inputs(clip, ("flow",), 3, cfg.size)["flow"])
        base[:, ci] = resp[:, ci, speeds.index(1.0)]
    idx = INV.invariance_index(resp, INV.between_class_variance(base))
    assert idx[0] > 0.95  # direction unit: speed does not move it
    # the speed unit's magnitude is the same for left and right: no class variance, no index
    assert np.isnan(idx[1])
    # against a class change it does see (MotionRight vs MotionRightFast at base), speed moves it
    base_fast = np.array([[1.0, 1.0], [CFG.speed, 2 * CFG.speed]])
    idx = INV.invariance_index(resp, INV.between_class_variance(base_fast))
    assert idx[1] < 0.1
    pref = INV.preferred_level(resp, speeds)
    assert pref[1] == 3.0


def test_invariance_index_bounds():
    between = np.array([1.0, 1.0, 0.0])
    resp = np.zeros((3, 2, 3))
    resp[1] = [[0, 10, -10], [0, 10, -10]]
    idx = INV.invariance_index(resp, between)
    assert idx[0] == 1.0 and idx[1] == 0.0 and np.isnan(idx[2])


# --------------------------------------------------------------------------- findings sentences


def _inv_table(top_mean, top_sd=0.05, untrained_mean=0.3):
    rows = []
    for net, means in (("trained", [0.3, 0.5, top_mean]), ("untrained", [0.3, 0.3, untrained_mean])):
        for d, (layer, m) in enumerate(zip(["conv1", "res3", "res5"], means), 1):
            for factor in ("speed", "speed_right"):
                mm = m if factor == "speed" else 0.2
                rows.append(dict(model="flow", network=net, layer=layer, depth=d, factor=factor, levels="", classes=2,
                                 units=64, mean=mm, lo=mm - 0.02, hi=mm + 0.02, sd=top_sd,
                                 preferred_speed_spread=0.5, preferred_speed_median=1.0))
    return pd.DataFrame(rows)


def test_finding3_claims_only_what_the_numbers_support():
    rising = " ".join(F.finding3(_inv_table(0.8)))
    assert "speed: conv1 0.30" in rising and "invariance rises with depth" in rising
    assert "above the untrained control" in rising and "stay speed-selective" in rising
    flat = " ".join(F.finding3(_inv_table(0.31, top_sd=0.5, untrained_mean=0.31)))
    assert "rises" not in flat and "do not show a change" in flat and "not shown above the untrained" in flat
    falling = " ".join(F.finding3(_inv_table(0.1)))
    assert "falls with depth" in falling


def test_finding2_claims_only_what_the_numbers_support():
    def table(k_trained, k_untrained, n=100):
        rows = []
        for net, k in (("trained", k_trained), ("untrained", k_untrained)):
            kinds = ["specific"] * k + ["generic"] * k + ["other"] * (n - 2 * k)
            rows += [dict(model="flow", network=net, layer="res5", depth=5, kind=x) for x in kinds]
        return UN.kind_fractions(pd.DataFrame(rows))

    learned = " ".join(F.finding2(table(30, 2)))
    assert "more class-specific units than the untrained one in res5" in learned
    assert "30/100" in learned
    same = " ".join(F.finding2(table(5, 4)))
    assert "do not show more class-specific" in same and "than the untrained one" not in same


def test_findings_document_has_three_sections(tmp_path):
    abl = "# Fusion ablation: findings\n\nIntro.\n\n## Which fusion\n\n- conv solved it.\n\n| a | b |\n|---|---|\n"
    md, rst = tmp_path / "f.md", tmp_path / "f.rst"
    F.write_findings(md, abl, pd.DataFrame(), _inv_table(0.8), pd.DataFrame(), rst=str(rst))
    text = md.read_text()
    assert text.count("\n## Finding ") == 3 and "### Which fusion" in text and "| a | b |" in text
    from docutils.core import publish_parts

    html = publish_parts(rst.read_text(), writer="html", settings_overrides={"halt_level": 2})["html_body"]
    assert "Finding 3" in html and "invariance rises with depth" in html


# --------------------------------------------------------------------------- config and errors


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="findings.where"):
        make_config({"where": "corner"})
    with pytest.raises(ConfigError, match="findings.colours"):
        make_config({"colours": ["mauve"]})
    with pytest.raises(ConfigError, match="findings: unknown key"):
        make_config({"probes": 3})


def test_cli_bad_classes_is_one_line(tmp_path, capsys):
    bad = tmp_path / "classes.csv"
    bad.write_text("label,class_name\n0,A\n")
    ckpt = tmp_path / "checkpoint.pt"
    from twostream.models import stream_model

    m = stream_model("flow", 4, arch="small", flow_length=2, widths=[4, 4, 4, 4], blocks=[1, 1, 1, 1])
    torch.save({"spec": m.spec, "model": m.state_dict(), "class_names": list("abcd"),
                "data": {"modalities": ["flow"], "flow_length": 2, "crop_size": 16}}, ckpt)
    rc = cli(["findings", "--checkpoint", str(ckpt), "--classes", str(bad), "--probes", str(tmp_path / "p.h5"),
              "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "classes.csv" in err[0] and "'group' missing" in err[0]
    assert not (tmp_path / "o" / "units.csv").exists()


# --------------------------------------------------------------------------- the stage


def _synthetic_shards(tmp_path, cfg, per_class=1):
    """Frames and ground-truth flow shards of test clips rendered from ``cfg``."""
    import h5py

    from twostream.store import quantize_flow, video_table_to_array, write_provenance

    rows, frows, fr, fl = [], [], [], []
    for label, name in zip(CLASSES.label, CLASSES.class_name):
        for i in range(per_class):
            clip = S.render_clip(cfg, int(label), 1000 + i, CLASSES)
            T = cfg.frames
            base = dict(video_id=f"{name}/v{i}", label=int(label), class_name=name, split="test", fps=25.0,
                        height=cfg.size, width=cfg.size)
            rows.append(dict(base, n_frames=T, offset=len(fr) * T))
            frows.append(dict(base, n_frames=T - 1, offset=len(fl) * (T - 1)))
            fr.append(clip.frames)
            fl.append(quantize_flow(clip.truth.flow, 20.0))
    paths = {}
    for kind, table, data in (("frames", rows, fr), ("flow", frows, fl)):
        p = tmp_path / kind / "shard-000.h5"
        p.parent.mkdir(parents=True)
        with h5py.File(p, "w") as f:
            f["videos"] = video_table_to_array(pd.DataFrame(table))
            f[kind] = np.concatenate(data)
            write_provenance(f, kind, {}, codec="raw", bound=20.0, storage="uint8")
        paths[kind] = str(p)
    return paths


def test_stage_measures_trained_and_untrained(tmp_path):
    import json

    from twostream.models import stream_model
    from twostream.models.fusion import fuse_streams

    shards = _synthetic_shards(tmp_path, CFG)
    torch.manual_seed(0)
    kw = dict(widths=[4, 4, 8, 8], flow_mean_subtraction=False)
    rgb, flow = stream_model("rgb", len(CLASSES), **kw), stream_model("flow", len(CLASSES), flow_length=2, **kw)
    model = fuse_streams(rgb, flow, "conv", "res3")
    ck = tmp_path / "checkpoint.pt"
    torch.save({"spec": model.spec, "model": model.state_dict(), "class_names": list(CLASSES.class_name),
                "data": {"modalities": ["rgb", "flow"], "flow_length": 2, "crop_size": CFG.size}}, ck)
    classes = tmp_path / "classes.csv"
    CLASSES.to_csv(classes, index=False)
    syn = {k: v for k, v in CFG.__dict__.items()}
    params = {"probe_clips": 1, "speeds": [1.0, 2.0], "positions": [0.3, 0.7], "sizes": [1.0], "phases": [0.0, 0.5],
              "colours": ["grey", "red"]}
    vis = {"test_clips_per_class": 2, "test_frames": 1, "steps": 3}
    out = tmp_path / "out"
    probes = tmp_path / "probes.h5"
    rc = cli(["findings", "--render-probes", str(probes), "--classes", str(classes), "--params", json.dumps(params),
              "--synthetic", json.dumps(syn), "--flow-length", "2", "--bound", "20"])
    assert rc == 0
    rc = cli(["findings", "--checkpoint", str(ck), "--frames", shards["frames"], "--flow", shards["flow"],
              "--classes", str(classes), "--probes", str(probes), "--out", str(out), "--params", json.dumps(params),
              "--visualize", json.dumps(vis), "--synthetic", json.dumps(syn)])
    assert rc == 0
    units = pd.read_csv(out / "units.csv")
    layers = ["flow.conv1", "flow.res2", "flow.res3", "fuse", "rgb.res4", "rgb.res5", "output"]
    assert list(dict.fromkeys(units.layer)) == layers
    assert set(units.network) == {"trained", "untrained"}
    assert set(units.kind) <= set(UN.KINDS)
    assert (units[units.layer == "output"].groupby("network").size() == len(CLASSES)).all()
    inv = pd.read_csv(out / "invariance.csv")
    factors = {"speed", "speed_right", "position", "size", "phase", "colour"}
    assert set(inv.factor) == factors and len(inv) == 2 * len(layers) * len(factors)
    ok = inv.dropna(subset=["mean"])
    assert ((ok.lo <= ok["mean"]) & (ok["mean"] <= ok.hi) & (ok["mean"] >= 0) & (ok["mean"] <= 1)).all()
    # a single-level factor is fully invariant by definition: the size rows (one level) read 1
    assert (ok[ok.factor == "size"]["mean"] == 1.0).all()
    # collect: tables, figures and the findings document
    rc = cli(["findings", "--collect", str(out), "--units", str(tmp_path / "u.csv"),
              "--invariance", str(tmp_path / "i.csv"), "--units-figure", str(tmp_path / "u.png"),
              "--invariance-figure", str(tmp_path / "i.png"), "--findings", str(tmp_path / "f.md")])
    assert rc == 0
    assert (tmp_path / "i.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "u.png").stat().st_size > 1000
    assert "## Finding 3" in (tmp_path / "f.md").read_text()


PROBE_PARAMS = {"probe_clips": 2, "speeds": [0.5, 2.0], "positions": [0.3], "sizes": [1.3], "phases": [0.5],
                "colours": ["red"], "seed": 3}


def _render_probes(tmp_path, params=PROBE_PARAMS, lengths=("2", "3"), name="probes.h5"):
    import json

    classes = tmp_path / "classes.csv"
    CLASSES.to_csv(classes, index=False)
    path = tmp_path / name
    rc = cli(["findings", "--render-probes", str(path), "--classes", str(classes), "--params", json.dumps(params),
              "--synthetic", json.dumps(CFG.__dict__), "--flow-length", *lengths, "--bound", "20"])
    assert rc == 0
    return path


def test_probes_file_holds_the_clips_the_jobs_rendered(tmp_path):
    """Inputs read from the probes file equal clip_inputs of freshly rendered probe clips, bit for
    bit, for every kind of model (rgb alone, flow alone, both) and both stored flow lengths."""
    from twostream.analysis.stage import probe_inputs
    from twostream.visualize.stage import ModelInfo

    path = _render_probes(tmp_path)
    fcfg = make_config(PROBE_PARAMS)
    sets = P.probe_plan(CLASSES, CFG, fcfg.speeds, fcfg.positions, fcfg.sizes, fcfg.phases, fcfg.colours)
    plan = [(si, lab, li, fac, i) for si, s in enumerate(sets) for lab in s.labels
            for li, fac in enumerate(s.factors) for i in range(fcfg.probe_clips)]
    clips = [P.render_probe(CFG, lab, int(np.random.SeedSequence([3, 7919, lab, i]).generate_state(1)[0]), fac, CLASSES)
             for _, lab, _, fac, i in plan]
    for modalities in (("rgb",), ("flow",), ("rgb", "flow")):
        for L in (2, 3):
            info = ModelInfo(modalities, L, 1.0, CFG.size, len(modalities) > 1, list(CLASSES.class_name))
            x, index = probe_inputs(path, sets, CFG, info, 20.0, fcfg)
            assert [tuple(r) for r in index] == [p[:3] for p in plan]
            for m in modalities:
                fresh = torch.stack([P.clip_inputs(c, modalities, L, CFG.size, 20.0)[m] for c in clips])
                assert x[m].dtype == fresh.dtype and torch.equal(x[m], fresh), (modalities, L, m)
    # controls: the rgb-alone frame is not the frame of a model with flow inputs, and the stored
    # flow is quantized (the unquantized truth differs), so the comparisons above can fail
    x_rgb, _ = probe_inputs(path, sets, CFG, ModelInfo(("rgb",), 2, 1.0, CFG.size, False, []), 20.0, fcfg)
    x_both, _ = probe_inputs(path, sets, CFG, ModelInfo(("rgb", "flow"), 2, 1.0, CFG.size, True, []), 20.0, fcfg)
    assert not torch.equal(x_rgb["rgb"], x_both["rgb"])
    frame, fields = P.snippet_frames(CFG.frames, 2, True)
    raw = torch.from_numpy(np.stack([c.truth.flow[fields] for c in clips]))  # (N, L, H, W, 2)
    raw = raw.permute(0, 1, 4, 2, 3).reshape(len(clips), -1, CFG.size, CFG.size)
    assert not torch.equal(x_both["flow"], raw)
    assert torch.allclose(x_both["flow"], raw, atol=20.0 / 127 / 2 + 1e-6)


def test_probes_file_errors_are_one_line(tmp_path, capsys):
    """A missing file, a file of another kind, probes of other settings or without the model's
    snippet: one line naming the file, no outputs."""
    import h5py
    import json

    from twostream.models import stream_model
    from twostream.store import write_provenance

    good = _render_probes(tmp_path, lengths=("1",))
    other = _render_probes(tmp_path, dict(PROBE_PARAMS, seed=4), name="other.h5")
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as f:
        f["index"] = np.zeros((1, 3), np.int32)
        write_provenance(f, "frames", {})
    m = stream_model("flow", len(CLASSES), arch="small", flow_length=2, widths=[4, 4, 4, 4], blocks=[1, 1, 1, 1])
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"spec": m.spec, "model": m.state_dict(), "class_names": list(CLASSES.class_name),
                "data": {"modalities": ["flow"], "flow_length": 2, "crop_size": CFG.size}}, ckpt)
    capsys.readouterr()
    cases = {tmp_path / "missing.h5": "probes file not found", wrong: "not a findings probes file",
             other: "rendered with other probe settings (findings.seed 4, this job 3)",
             good: "needs frame 3 and fields [2, 3]"}
    for path, message in cases.items():
        rc = cli(["findings", "--checkpoint", str(ckpt), "--classes", str(tmp_path / "classes.csv"),
                  "--probes", str(path), "--out", str(tmp_path / "o"), "--params", json.dumps(PROBE_PARAMS),
                  "--synthetic", json.dumps(CFG.__dict__)])
        err = [l for l in capsys.readouterr().err.strip().splitlines() if l.startswith("twostream: error")]
        assert rc == 2 and len(err) == 1 and str(path) in err[0] and message in err[0], err
    assert not (tmp_path / "o").exists()
    # control: the same job with a file of its own settings and flow length gets past the probes
    right = _render_probes(tmp_path, lengths=("2",), name="right.h5")
    rc = cli(["findings", "--checkpoint", str(ckpt), "--classes", str(tmp_path / "classes.csv"),
              "--probes", str(right), "--out", str(tmp_path / "o"), "--params", json.dumps(PROBE_PARAMS),
              "--synthetic", json.dumps(CFG.__dict__)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "needs the test shards" in err[-1] and str(right) not in err[-1]


def test_finding3_claims_no_negligible_change():
    """A difference of 0.01 with a tight interval is significant but below findings.min_change."""
    t = _inv_table(0.31, top_sd=0.001, untrained_mean=0.3)
    t.loc[t.network == "trained", "sd"] = 0.001
    t.loc[(t.network == "untrained"), "sd"] = 0.001
    text = " ".join(F.finding3(t, min_change=0.05))
    assert "rises" not in text and "do not show a change" in text
    assert "rises" in " ".join(F.finding3(t, min_change=0.0))


def test_defaults_match_schema_config_file_and_readme():
    import dataclasses
    from pathlib import Path

    import yaml

    from twostream.analysis.stage import FindingsConfig

    root = Path(__file__).resolve().parents[1]
    props = yaml.safe_load((root / "workflow/schemas/config.schema.yaml").read_text())["properties"]["findings"][
        "properties"]
    defaults = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
                for f in dataclasses.fields(FindingsConfig)}
    assert set(props) == set(defaults)
    for k, v in defaults.items():
        assert props[k]["default"] == v, k
    assert make_config(yaml.safe_load((root / "config/config.yaml").read_text())["findings"]) == FindingsConfig()
    readme = (root / "config/README.md").read_text().split("## findings", 1)[1].split("\n## ", 1)[0]
    for k in defaults:
        assert f"| `{k}` |" in readme, k


def test_test_clips_read_once_give_each_network_its_own_statistics(tmp_path):
    """clip_statistics_of (the findings' one pass over the test clips for both networks) gives
    each network exactly what its own pass gives; control: the two networks' differ."""
    from twostream.models import stream_model
    from twostream.models.fusion import fuse_streams
    from twostream.visualize.objectives import OUTPUT
    from twostream.visualize.stage import ModelInfo, clip_statistics, clip_statistics_of
    from twostream.visualize.stage import make_config as vis_config

    shards = _synthetic_shards(tmp_path, CFG, per_class=2)
    torch.manual_seed(0)
    kw = dict(widths=[4, 4, 8, 8], flow_mean_subtraction=False)
    rgb, flow = stream_model("rgb", len(CLASSES), **kw), stream_model("flow", len(CLASSES), flow_length=2, **kw)
    model = fuse_streams(rgb, flow, "conv", "res3").eval()
    nets = {"trained": model, "untrained": untrained(model, 0)}
    info = ModelInfo(("rgb", "flow"), 2, 1.0, CFG.size, True, list(CLASSES.class_name))
    vcfg = vis_config({"test_clips_per_class": 2, "test_frames": 2})  # 40 snippets: two batches
    layers = ["flow.res2", "fuse", OUTPUT]
    both = clip_statistics_of(nets, info, layers, [shards["frames"]], [shards["flow"]], vcfg, "test")
    for name, m in nets.items():
        one = clip_statistics(m, info, layers, [shards["frames"]], [shards["flow"]], vcfg, "test")
        assert np.array_equal(both[name]["labels"], one["labels"]) and len(one["labels"]) == 2 * len(CLASSES)
        for l in layers:
            assert np.array_equal(both[name]["acts"][l], one["acts"][l]), (name, l)
    for l in layers:
        assert not np.allclose(both["trained"]["acts"][l], both["untrained"]["acts"][l]), l


def test_probes_take_the_flow_shards_bound(tmp_path):
    """With --flow the probe flow is quantized at the shards' bound (what the findings jobs read),
    not at --bound; control: a file quantized at another bound than the job's shards is refused."""
    import json

    import h5py

    from twostream.analysis.stage import probe_inputs
    from twostream.errors import InputError
    from twostream.readers import read_probes
    from twostream.store import write_provenance
    from twostream.visualize.stage import ModelInfo

    shard = _synthetic_shards(tmp_path / "shards", CFG)["flow"]
    with h5py.File(shard, "r+") as f:  # the same shard, as if the flow stage had clipped at 12 px
        write_provenance(f, "flow", {}, codec="raw", bound=12.0, storage="uint8")
    classes = tmp_path / "classes.csv"
    CLASSES.to_csv(classes, index=False)
    args = ["--classes", str(classes), "--params", json.dumps(PROBE_PARAMS), "--synthetic", json.dumps(CFG.__dict__),
            "--flow-length", "2"]
    from_shard, from_bound = tmp_path / "a.h5", tmp_path / "b.h5"
    assert cli(["findings", "--render-probes", str(from_shard), *args, "--bound", "20", "--flow", str(shard)]) == 0
    assert cli(["findings", "--render-probes", str(from_bound), *args, "--bound", "20"]) == 0
    assert read_probes(from_shard)["bound"] == 12.0 and read_probes(from_bound)["bound"] == 20.0
    fcfg = make_config(PROBE_PARAMS)
    sets = P.probe_plan(CLASSES, CFG, fcfg.speeds, fcfg.positions, fcfg.sizes, fcfg.phases, fcfg.colours)
    info = ModelInfo(("flow",), 2, 1.0, CFG.size, False, list(CLASSES.class_name))
    x, _ = probe_inputs(from_shard, sets, CFG, info, 12.0, fcfg)
    assert x["flow"].abs().max() <= 12.0
    with pytest.raises(InputError, match="quantized at bound 20"):
        probe_inputs(from_bound, sets, CFG, info, 12.0, fcfg)
