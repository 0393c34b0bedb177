"""One source of truth for settings: the schema's defaults are config/config.yaml, every
settings dataclass takes its fields' defaults from the schema, and one validation (the
schema, then the checks across keys) serves Snakemake, --params and --config alike."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import typing
from pathlib import Path

import pytest
import yaml

from twostream import config as C
from twostream.config import ConfigError

REPO = Path(__file__).resolve().parents[1]
BASE = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
# every module that defines a settings dataclass (@settings)
MODULES = ["twostream.datasets", "twostream.datasets.synthetic", "twostream.decode", "twostream.flow.params",
           "twostream.train", "twostream.evaluate", "twostream.fusion_train", "twostream.ablation",
           "twostream.visualize.stage", "twostream.analysis.stage", "twostream.quirk", "twostream.plots"]
JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string", list: "array", tuple: "array"}


def settings_classes() -> dict[str, type]:
    out = {}
    for name in MODULES:
        for obj in vars(importlib.import_module(name)).values():
            if isinstance(obj, type) and "SECTION" in vars(obj) and dataclasses.is_dataclass(obj):
                out[obj.SECTION] = obj
    return out


def sections(s: dict, path: str = "") -> list[str]:
    """Every object of the schema with its own keys (sections and nested sections)."""
    out = [path] if path else []
    for k, sub in s.get("properties", {}).items():
        if sub.get("type") == "object" and "properties" in sub:
            out += sections(sub, f"{path}.{k}" if path else k)
    return out


def test_config_file_is_the_schema_defaults():
    # exact, types included (1 and 1.0 are different defaults in a YAML file)
    assert C.defaults() == BASE
    assert repr(C.defaults()) == repr(BASE)
    assert C.problems("", C.defaults()) == []


def test_every_section_has_its_dataclass_with_the_schema_defaults():
    classes = settings_classes()
    # the sections read by no dataclass: the whole fusion section (its parts are), the grid
    # (twostream.grid reads it) and the per-stream overrides (laid over train)
    unread = {"fusion", "fusion.grid", "train.rgb", "train.flow"}
    assert set(classes) == set(sections(C.schema())) - unread
    for path, cls in classes.items():
        schema = C.subschema(path)["properties"]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert set(fields) == set(schema) - set(cls.NOT_FIELDS), path
        hints = typing.get_type_hints(cls)
        for name in fields:
            kind = hints[name]
            if kind is typing.Any:  # one of several types: the schema says which (oneOf)
                assert "oneOf" in schema[name], (path, name)
                continue
            kind = typing.get_origin(kind) or kind
            want = "object" if dataclasses.is_dataclass(kind) else JSON_TYPES[kind]
            assert schema[name]["type"] == want or (want == "number" and schema[name]["type"] == "integer"), \
                (path, name, kind, schema[name]["type"])
        values = C.to_dict(cls())
        want = {k: v for k, v in C.defaults(path).items() if k not in cls.NOT_FIELDS}
        assert values == want, path


def test_a_default_written_in_a_class_is_refused():
    with pytest.raises(TypeError, match="belongs in the schema"):
        @C.settings("plots")
        class Plots:
            dpi: int = 100
            style: str
            flow_examples: int

    with pytest.raises(TypeError, match="no default for plots.colour"):
        @C.settings("plots")
        class Plots2:
            colour: str

    @C.settings("plots")
    class Plots3:  # the control: the same class without its own defaults is fine
        dpi: int
        style: str
        flow_examples: int

    assert C.to_dict(Plots3()) == BASE["plots"]


@pytest.mark.parametrize("path, values, match", [
    ("decode", {"codec": "png"}, r"^decode\.codec: 'png' is not one of"),
    ("decode", {"shardz": 2}, r"^decode: unknown key\(s\) shardz$"),
    ("fusion.train", {"pool3d_segments": 1}, r"^fusion\.train\.pool3d_segments: 1 is less than the minimum of 2"),
    ("findings", {"colours": ["mauve"]}, r"^findings\.colours\.0: 'mauve' is not one of"),
    ("train", {"flow": {"lrr": 1}}, r"^train\.flow: unknown key\(s\) lrr$"),
])
def test_a_bad_value_is_one_line_naming_the_key(path, values, match):
    with pytest.raises(ConfigError, match=match) as e:
        C.validate(path, values)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("path, change, match", [
    ("decode", {"size": [64, 48], "short_side": 32}, "decode.size and decode.short_side"),
    ("synthetic", {"radius": 20.0, "size": 32}, "synthetic.radius"),
    ("synthetic", {"test_groups": 25}, "synthetic.val_groups"),
    ("synthetic", {"appearance_colours": [], "motions": [], "spatiotemporal_directions": []}, "no classes"),
    ("fusion.train", {"conv3d_kernel": [3, 2, 3]}, "fusion.train.conv3d_kernel"),
    ("fusion.train", {"late_weights": [0.0, 0.0]}, "fusion.train.late_weights"),
])
def test_checks_across_keys(path, change, match):
    good = C.defaults(path)
    assert C.problems(path, good) == []  # the control: the defaults pass
    bad = {**good, **change}
    with pytest.raises(ConfigError, match=match):
        C.validate(path, bad)
    whole = copy.deepcopy(BASE)  # and they run when the whole config is checked
    sub = whole
    for k in path.split("."):
        sub = sub[k]
    sub.update(change)
    with pytest.raises(ConfigError, match=match):
        C.complete(whole)


def test_dataclasses_validate_themselves():
    from twostream.decode import DecodeConfig
    from twostream.fusion_train import FusionTrainConfig

    with pytest.raises(ConfigError, match="decode.size"):
        DecodeConfig(size=[48])
    with pytest.raises(ConfigError, match="fusion.train.conv3d_kernel"):
        FusionTrainConfig(conv3d_kernel=[2, 3, 3])
    assert DecodeConfig(size=[48, 32]).size == [48, 32]


def args_for(path: Path) -> argparse.Namespace:
    return argparse.Namespace(params=None, config=str(path))


def test_config_file_is_laid_over_the_defaults_as_snakemake_does(tmp_path):
    from snakemake.utils import update_config

    own = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    snakemake_view = copy.deepcopy(BASE)
    update_config(snakemake_view, copy.deepcopy(own))
    assert C.read_config(REPO / "config" / "test.yaml") == snakemake_view
    for section in ("evaluate", "fusion", "visualize", "train"):
        assert C.section_from_args(args_for(REPO / "config" / "test.yaml"), section) == snakemake_view[section]


@pytest.mark.parametrize("text, match", [
    ("evaluate: {frames: 0}\n", "evaluate.frames: 0 is less than the minimum of 1"),
    ("evaluat: {frames: 3}\n", r"\(top level\): unknown key\(s\) evaluat"),
    ("decode: {size: [64, 48], short_side: 32}\n", "decode.size and decode.short_side"),
    ("- 1\n", "top level must be a mapping"),
])
def test_config_file_errors_name_the_file_and_the_key(tmp_path, text, match):
    path = tmp_path / "my.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as e:
        C.section_from_args(args_for(path), "evaluate")
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_cli_config_path_is_checked_by_the_schema(tmp_path, capsys):
    from twostream.cli import main

    path = tmp_path / "my.yaml"
    path.write_text("decode: {jpeg_quality: 101}\n")
    assert main(["decode", "--config", str(path), "--index", "x.csv", "--shard", "shard-000", "--out", "y.h5"]) == 2
    err = capsys.readouterr().err
    assert "decode.jpeg_quality: 101 is greater than the maximum of 100" in err and str(path) in err


def readme_defaults() -> dict[tuple[str, str], str]:
    """(section, key) -> the default column of config/README.md's tables."""
    out, section = {}, ""
    for line in (REPO / "config" / "README.md").read_text().splitlines():
        if line.startswith(("## ", "### ")):
            section = line.split(maxsplit=1)[1].strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("| `") else []
        if len(cells) >= 3 and cells[1].startswith("`") and cells[1].endswith("`"):
            for key in (k.strip().strip("`") for k in cells[0].split(",")):
                out[(section, key)] = cells[1][1:-1]
    return out


def test_readme_documents_every_key_with_the_schema_default():
    documented = readme_defaults()
    wrong = []
    for path in sections(C.schema()):
        if path in ("train.rgb", "train.flow"):
            continue  # overrides of the train keys: one row, `rgb`, `flow`
        for key, sub in C.subschema(path)["properties"].items():
            if sub.get("type") == "object" and "properties" in sub and (path, key) not in documented:
                continue  # a nested section: its own table (### path.key) or rows key.sub
            top, _, rest = path.partition(".")
            row = documented.get((path, key)) or documented.get((top, f"{rest}.{key}" if rest else key))
            if row is None:
                wrong.append(f"{path}.{key}: not documented")
            elif row != "see config.yaml" and "default" in sub and yaml.safe_load(row) != sub["default"]:
                wrong.append(f"{path}.{key}: README {row!r}, schema {sub['default']!r}")
    assert not wrong, "\n".join(wrong)


def test_check_config_names_the_file_and_line_snakemake_does_not(tmp_path, capsys):
    from twostream.cli import main

    base = str(Path(__file__).parents[1] / "config" / "config.yaml")
    bad = tmp_path / "mine.yaml"
    bad.write_text("dataset:\n  kind: ucf101\ntrain:\n  epochs: [3\n")
    assert main(["check-config", base, str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{bad}:5:1: not valid YAML" in err[0]
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("train:\n  epochs: -3\n")
    assert main(["check-config", base, str(wrong)]) == 2
    assert "train.epochs" in capsys.readouterr().err
    # the control: the shipped configs pass
    for good in ("test.yaml", "full.yaml", "ucf101.yaml", "hmdb51.yaml"):
        assert main(["check-config", base, str(Path(base).with_name(good))]) == 0, good
