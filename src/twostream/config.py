"""Typed stage settings built from plain dicts (the values rules pass as params).

Every stage reads its own config section (``decode:``, ``flow:``, ``train:`` ...).
A rule passes that section as a JSON string (``--params '{...}'``); by hand a user
passes a config file instead (``--config my.yaml``): it is laid over the defaults, as
Snakemake lays ``--configfile`` over config/config.yaml, validated, and the stage reads
its section from it.

One source of truth per setting: ``workflow/schemas/config.schema.yaml`` holds every
key's type, range, description and default. The settings dataclasses take their
defaults from it (``@settings("train")``), and validation is one function,
``validate(path, values)``: the schema, then the few checks that span keys
(``CROSS_CHECKS``). config/config.yaml equals the schema's defaults (tests/test_settings.py).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import typing
from pathlib import Path
from typing import Any, Callable, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing, unknown or has a wrong value; the message names the key."""


def from_dict(cls: type[T], d: dict[str, Any] | None, section: str = "") -> T:
    """Build dataclass ``cls`` from ``d``; unknown keys are an error naming the key.

    Nested dataclass fields are built recursively from nested dicts.
    """
    if d is not None and not isinstance(d, dict):
        raise ConfigError(f"{section or cls.__name__}: must be a mapping, got {d!r}")
    d = dict(d or {})
    where = section or cls.__name__
    if hasattr(cls, "SECTION"):  # a settings class: the schema checks the given keys first
        validate(where if _in_schema(where) else cls.SECTION, d, cross=False)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in d.items():
        sub = hints.get(name)
        if dataclasses.is_dataclass(sub) and isinstance(value, dict):
            value = from_dict(sub, value, f"{where}.{name}")
        kwargs[name] = value
    return cls(**kwargs)


def _in_schema(path: str) -> bool:
    try:
        subschema(path)
    except (KeyError, TypeError):
        return False
    return True


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


# --------------------------------------------------------------------------- the schema
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
_MISSING = object()


@functools.lru_cache(maxsize=None)
def schema() -> dict[str, Any]:
    """The config schema (the one source of every key's type, range and default)."""
    try:
        return yaml.safe_load(SCHEMA_PATH.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{SCHEMA_PATH}: config schema not found (twostream runs from its source tree)") from None


def subschema(path: str) -> dict[str, Any]:
    """The schema of a section, e.g. ``"fusion.train"`` ("" = the whole config)."""
    s = schema()
    for key in filter(None, path.split(".")):
        s = s["properties"][key]
    return s


def _default(s: dict[str, Any]) -> Any:
    if s.get("type") == "object" and "properties" in s:
        out = copy.deepcopy(s.get("default", {}))
        for k, sub in s["properties"].items():
            v = _default(sub)
            if v is not _MISSING:
                out[k] = v
        return out
    return copy.deepcopy(s["default"]) if "default" in s else _MISSING


def defaults(path: str = "") -> dict[str, Any]:
    """The schema's defaults of a section (nested mappings filled), a fresh copy."""
    return _default(subschema(path))


def merged(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """``over`` laid over ``base`` as Snakemake lays a --configfile over the config:
    mappings merge key by key, any other value replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


@functools.lru_cache(maxsize=None)
def _validator(path: str):
    import jsonschema  # deferred: only the config checks need it (about 0.1 s to import)

    base = jsonschema.Draft202012Validator
    # settings dataclasses may hold tuples where the config has lists
    types = base.TYPE_CHECKER.redefine("array", lambda _checker, x: isinstance(x, (list, tuple)))
    return jsonschema.validators.extend(base, type_checker=types)(subschema(path))


def _where(path: str, parts) -> str:
    return ".".join([p for p in path.split(".") if p] + [str(p) for p in parts]) or "(top level)"


def problems(path: str, values: dict[str, Any], cross: bool = True) -> list[str]:
    """Every problem of ``values`` as the section ``path``: one line each, naming the key.
    ``cross``: also the checks across keys (they need the section's complete values)."""
    out = []
    for e in sorted(_validator(path).iter_errors(values), key=lambda e: [str(p) for p in e.absolute_path]):
        where = _where(path, e.absolute_path)
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            unknown = sorted(set(e.instance) - set(e.schema.get("properties", {})))
            out.append(f"{where}: unknown key(s) {', '.join(map(str, unknown))}")
        elif e.validator == "enum":
            out.append(f"{where}: {e.instance!r} is not one of {', '.join(map(str, e.validator_value))}")
        else:
            out.append(f"{where}: {e.message}")
    if out or not cross:
        return out
    for section, check in CROSS_CHECKS:
        if path and section != path and not section.startswith(f"{path}."):
            continue
        sub = values
        for key in section[len(path):].strip(".").split(".") if section != path else []:
            sub = sub.get(key) if isinstance(sub, dict) else None
        if isinstance(sub, dict):
            out += check(sub)
    return out


def validate(path: str, values: dict[str, Any], cross: bool = True) -> dict[str, Any]:
    """``values`` if they are a valid section ``path``, else a ConfigError naming every problem."""
    found = problems(path, values, cross)
    if found:
        raise ConfigError("; ".join(found))
    return values


def complete(cfg: dict[str, Any] | None, where: str = "config") -> dict[str, Any]:
    """A whole config laid over the schema's defaults and validated."""
    if cfg is not None and not isinstance(cfg, dict):
        raise ConfigError(f"{where}: top level must be a mapping")
    full = merged(defaults(), cfg)
    found = problems("", full)
    if found:
        raise ConfigError(f"{where}: " + "; ".join(found))
    return full


# --------------------------------------------------------------------------- checks across keys
def _decode(d: dict) -> list[str]:
    if d.get("size") and d.get("short_side"):
        return ["decode.size and decode.short_side: set one of them (size fixes both sides)"]
    return []


def _synthetic(d: dict) -> list[str]:
    out = []
    if not d["test_groups"] + d["val_groups"] < d["groups"]:
        out.append("synthetic.val_groups: need test_groups + val_groups < groups, got "
                   f"{d['test_groups']}, {d['val_groups']}, {d['groups']}")
    if not d["radius"] < d["size"] / 6:
        out.append(f"synthetic.radius: must be in (0, size/6), got {d['radius']} for size {d['size']}")
    if not (d["appearance_colours"] or d["motions"] or d["spatiotemporal_directions"]):
        out.append("synthetic.motions: no classes: appearance_colours, motions and spatiotemporal_directions "
                   "are all empty")
    return out


def _fusion_train(d: dict) -> list[str]:
    out = []
    if any(int(k) % 2 == 0 for k in d["conv3d_kernel"]):
        out.append(f"fusion.train.conv3d_kernel: must be three odd sizes (t, h, w), got {list(d['conv3d_kernel'])}")
    if sum(d["late_weights"]) <= 0:
        out.append(f"fusion.train.late_weights: must not both be 0, got {list(d['late_weights'])}")
    return out


# (section, check): a check gets the section's complete values, returns one line per problem
CROSS_CHECKS: list[tuple[str, Callable[[dict], list[str]]]] = [
    ("decode", _decode),
    ("synthetic", _synthetic),
    ("fusion.train", _fusion_train),
]


# --------------------------------------------------------------------------- settings dataclasses
def _as_declared(value: Any, kind: Any) -> Any:
    """A schema default in the field's declared type: YAML writes 20 for a float field's 20.0."""
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(kind) is list and typing.get_args(kind) == (float,) and isinstance(value, list):
        return [_as_declared(v, float) for v in value]
    return value


def settings(path: str, *, not_fields: tuple[str, ...] = ()) -> Callable[[type[T]], type[T]]:
    """Make ``cls`` the dataclass of config section ``path``: every field's default is the
    schema's (a default written in the class is an error: it would be a second copy), and
    every instance is validated by ``validate(path, ...)`` before its own ``__post_init__``
    (which may only convert). ``not_fields``: schema keys that are no field (train.rgb)."""

    def wrap(cls: type[T]) -> type[T]:
        d = defaults(path)
        hints = typing.get_type_hints(cls)
        names = list(cls.__dict__.get("__annotations__", {}))
        for base in cls.__mro__[1:]:  # inherited fields (a base's copy of a default is replaced)
            for f in dataclasses.fields(base) if dataclasses.is_dataclass(base) else ():
                if f.name in d and f.name not in names:
                    cls.__annotations__[f.name] = hints[f.name]
                    names.append(f.name)
        for name in names:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__qualname__}.{name}: default written in the class; it belongs in the schema")
            if name not in d:
                raise TypeError(f"{cls.__qualname__}.{name}: the schema has no default for {path}.{name}")
            value, kind = _as_declared(d[name], hints[name]), hints[name]
            if dataclasses.is_dataclass(kind):
                setattr(cls, name, dataclasses.field(default_factory=kind))
            elif isinstance(value, (list, dict)):
                setattr(cls, name, dataclasses.field(default_factory=functools.partial(copy.deepcopy, value)))
            else:
                setattr(cls, name, value)
        own_post_init = cls.__dict__.get("__post_init__")

        def __post_init__(self) -> None:
            validate(path, to_dict(self))
            if own_post_init is not None:
                own_post_init(self)

        cls.__post_init__ = __post_init__
        cls = dataclasses.dataclass(cls)
        cls.SECTION = path
        cls.NOT_FIELDS = tuple(not_fields)
        return cls

    return wrap


def load_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        with open(path) as fh:
            cfg = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as e:  # one line: file:line:column and the problem
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML ({what})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return cfg


def read_config(path: str | Path) -> dict[str, Any]:
    """A config file as Snakemake sees it: laid over the defaults and validated by the
    same schema (what ``--config FILE`` gives a stage)."""
    return complete(load_config(path), str(path))


# --------------------------------------------------------------------------- twostream check-config
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", help="config files in the order Snakemake lays them over each other "
                                            "(config/config.yaml, then each --configfile)")


def run(args: argparse.Namespace) -> int:
    """Check config files as Snakemake would merge them; a YAML error names file, line and column.

    Snakemake reads ``--configfile`` before it loads the workflow and reports a YAML error
    without the file's name, so the workflow cannot name it; ``make run`` runs this first."""
    full: dict[str, Any] = {}
    for f in args.files:
        full = merged(full, load_config(f))
    complete(full, " + ".join(args.files))
    print(f"twostream check-config: {' + '.join(args.files)}: valid")
    return 0


STREAM_KEYS = ("rgb", "flow")


def stream_section(train: dict[str, Any] | None, stream: str) -> dict[str, Any]:
    """The ``train:`` section as one stream sees it: its own mapping (``train.rgb`` or
    ``train.flow``) laid over the shared keys, without the per-stream mappings."""
    sec = dict(train or {})
    overrides = {s: (sec.pop(s, None) or {}) for s in STREAM_KEYS}
    sec.update(overrides[stream])
    return sec


def add_params_arguments(p: argparse.ArgumentParser) -> None:
    """``--params JSON`` (what rules pass) or ``--config FILE`` (by hand)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument("--params", help="JSON object with this stage's settings (as the Snakemake rule passes them)")
    g.add_argument("--config", help="YAML config file; the stage reads its own section from it")


def params_object(text: str) -> dict[str, Any]:
    """The JSON object of a ``--params`` argument (one-line errors)."""
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--params is not valid JSON ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError("--params must be a JSON object")
    return d


def section_from_args(args: argparse.Namespace, section: str) -> dict[str, Any]:
    """The stage's settings dict from ``--params`` or from ``--config``'s section."""
    if getattr(args, "params", None):
        return params_object(args.params)
    if getattr(args, "config", None):
        return dict(read_config(args.config).get(section) or {})
    return {}
