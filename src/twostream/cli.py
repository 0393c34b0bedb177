"""``twostream <stage> ...``: one subcommand per workflow rule.

Each stage module provides ``add_arguments(parser)`` and ``run(args) -> int``;
modules are imported only when their subcommand runs, so ``twostream --help``
is fast. Errors the user can fix (bad config, bad input file) print one line and
exit with status 2; they never end in a library traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading

from . import __version__
from .config import ConfigError
from .errors import InputError, one_line

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
    "check-config": ("twostream.config", "check config files as Snakemake merges them (YAML errors name file:line)"),
    "quirk": ("twostream.quirk", "plant a quirk in one class's training clips; measure the failure and its visualization"),
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twostream", description=__doc__.splitlines()[0])
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


def console() -> None:
    """The ``twostream`` command (``[project.scripts]``, ``python -m twostream``): :func:`main`,
    then the process ends without the interpreter's teardown. Every output is written and
    renamed by then; the teardown (module and object finalisation after torch, scipy,
    pandas and matplotlib are loaded) took 1-2.3 s of CPU per job, a job's own work for the
    shortest ones (``bench/exit.py``). An exception that escapes ``main`` ends the usual way."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Stopped(BaseException):
    """SIGTERM or SIGINT arrived: unwinds the stage so that every temporary file is removed."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame) -> None:
    # ignore repeats while the stage cleans up (SLURM sends SIGKILL after its KillWait)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, signal.SIG_IGN)
    raise Stopped(signum)


def _run(module, args) -> int:
    handled = (signal.SIGTERM, signal.SIGINT)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {s: signal.signal(s, _stop) for s in handled} if main_thread else {}
    code = 0
    try:
        code = int(module.run(args) or 0)
    except (ConfigError, InputError) as e:
        print(f"twostream: error: {one_line(str(e))}", file=sys.stderr)
        code = 2
        _exit_if_abandoned(code)
    except Stopped as e:
        name = signal.Signals(e.signum).name
        print(f"twostream: stopped by {name} (temporary files removed)", file=sys.stderr)
        code = 128 + e.signum
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return code


def _exit_if_abandoned(code: int) -> None:
    """End the process now when an HDF5 write failed: HDF5 2.0 crashes (SIGSEGV) when it
    closes such a file, also at interpreter exit. The temporary file is already removed."""
    store = sys.modules.get("twostream.store")
    if store is not None and store.abandoned_h5():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
