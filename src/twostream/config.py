"""Typed stage settings built from plain dicts (the values rules pass as params).

Every stage reads its own config section (``decode:``, ``flow:``, ``train:`` ...).
A rule passes that section as a JSON string (``--params '{...}'``); by hand a user
passes the config file instead (``--config config/config.yaml``) and the stage
reads its section from it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A setting is missing, unknown or has a wrong value; the message names the key."""


def from_dict(cls: type[T], d: dict[str, Any] | None, section: str = "") -> T:
    """Build dataclass ``cls`` from ``d``; unknown keys are an error naming the key.

    Nested dataclass fields are built recursively from nested dicts.
    """
    d = dict(d or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    where = section or cls.__name__
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


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


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
        cfg = load_config(args.config)
        return dict(cfg.get(section) or {})
    return {}
