"""Code hashes from the import closure: which package files a stage really runs.

A stage's code is its entry module (the module of its ``twostream`` subcommand, see
``twostream.cli.COMMANDS``), ``twostream.cli`` that runs it, and every ``twostream`` module
they import, followed transitively: absolute (``import twostream.x``, ``from twostream.x
import y``) and relative (``from .x import y``, ``from . import x``) imports, at module level
or inside functions, plus the ``__init__.py`` of every package on the way (Python runs it on
import). The closure is read from the source with :mod:`ast`, never from a hand-kept list,
so an edit to any file a stage imports changes that stage's hash, and an edit to a file it
does not import leaves it alone.

The workflow passes ``code_hash(command)`` as a rule param (Snakemake reruns a job whose
params changed), and the training stages put the same hash in their resume fingerprint.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from .cli import COMMANDS

PACKAGE = "twostream"
ROOT = Path(__file__).resolve().parent  # the package folder (src/twostream)


def module_file(name: str) -> Path | None:
    """The source file of package module ``name`` (``twostream.a.b``), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    for f in (base / "__init__.py", base.with_suffix(".py")):
        if f.is_file():
            return f
    return None


def _packages_of(name: str) -> list[str]:
    """``twostream.a.b`` -> [``twostream``, ``twostream.a``]: run on import of ``name``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@functools.lru_cache(maxsize=None)
def direct_imports(name: str) -> tuple[str, ...]:
    """Package modules that module ``name`` imports anywhere in its source."""
    f = module_file(name)
    if f is None:
        return ()
    is_pkg = f.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: list[str] = []
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.append(mod)
            found += [f"{mod}.{a.name}" for a in node.names]  # ``from pkg import submodule``
    out = []
    for mod in found:
        while mod and module_file(mod) is None:  # ``twostream.x.func`` -> ``twostream.x``
            mod = mod.rpartition(".")[0]
        if mod and mod != name:
            out.append(mod)
    return tuple(dict.fromkeys(out))


def closure(*entries: str) -> list[str]:
    """Every package module that importing ``entries`` runs, sorted."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo += _packages_of(name) + list(direct_imports(name))
    return sorted(seen)


def code_hash(*entries: str) -> str:
    """Short hash of the files of ``closure(*entries)`` (paths and contents)."""
    h = hashlib.sha1()
    for name in closure(*entries):
        f = module_file(name)
        h.update(str(f.relative_to(ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def command_hash(command: str) -> str:
    """The code hash of a ``twostream`` subcommand: its module and the CLI that runs it."""
    return code_hash("twostream.cli", COMMANDS[command][0])


__all__ = ["closure", "code_hash", "command_hash", "direct_imports", "module_file"]
