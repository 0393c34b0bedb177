"""``twostream <stage> ...``: one subcommand per workflow rule.

Each stage module provides ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``twostream --help``
is fast. Errors the user can fix (bad config, bad input file) print one line and
exit with status 2; they never end in a library traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("twostream.datasets.synthetic", "generate the synthetic action dataset as encoded videos"),
    "index": ("twostream.datasets", "build the video index (csv) of a dataset"),
    "decode": ("twostream.decode", "decode the videos of one shard into an HDF5 frames shard"),
    "flow": ("twostream.flow.stage", "compute TV-L1 (or DIS) optical flow of a frames shard"),
    "train": ("twostream.train", "train one stream (rgb or flow) and checkpoint every epoch"),
    "train-fusion": ("twostream.fusion_train", "train one fused two-stream network"),
    "evaluate": ("twostream.evaluate", "evaluate a model with the test protocol"),
    "ablation": ("twostream.ablation", "collect the fusion grid into the ablation table"),
    "visualize": ("twostream.visualize.stage", "activation maximisation of units at every depth"),
    "findings": ("twostream.analysis.stage", "unit kinds and invariance per layer (the paper's findings 2 and 3)"),
    "plots": ("twostream.plots", "summary figures"),
    "quirk": ("twostream.quirk", "plant a quirk in one class's training clips; measure the failure and its visualization"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twostream", description=__doc__.splitlines()[0])
    from . import __version__

    p.add_argument("--version", action="version", version=f"twostream {__version__}")
    sub = p.add_subparsers(dest="command", metavar="<stage>")
    sub.required = True
    for name, (module, help_) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_)
        sp.set_defaults(_module=module)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        name = argv[0]
        module = importlib.import_module(COMMANDS[name][0])
        p = argparse.ArgumentParser(prog=f"twostream {name}", description=COMMANDS[name][1])
        module.add_arguments(p)
        args = p.parse_args(argv[1:])
        return _run(module, args)
    build_parser().parse_args(argv)
    return 0


def _run(module, args) -> int:
    from .config import ConfigError
    from .errors import InputError
    from .store import StoreError

    try:
        return int(module.run(args) or 0)
    except (ConfigError, InputError, StoreError) as e:
        print(f"twostream: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
