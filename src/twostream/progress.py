"""Progress of long loops: a tqdm bar on a terminal, plain lines in a log file.

Rule logs are files: tqdm's carriage-return redraws turn them into one unreadable
line. ``progress(...)`` takes tqdm's common arguments and returns a tqdm bar when
``file`` (stderr by default) is a terminal, else a :class:`PlainProgress` that prints
a line such as ``flow torch: 320/1000 pair (32%), 12.3 s`` at most every
``interval`` seconds and at the end (with ``leave=False``, at the end only if it
printed before: short loops stay silent).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Iterable, Iterator

from tqdm import tqdm


class PlainProgress:
    """The part of tqdm's interface the stages use, printing plain lines."""

    def __init__(
        self,
        iterable: Iterable | None = None,
        total: int | None = None,
        desc: str = "",
        unit: str = "it",
        file=None,
        disable: bool = False,
        interval: float = 10.0,
        leave: bool = True,
    ):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total, self.desc, self.unit = total, desc, unit
        self.file = file if file is not None else sys.stderr
        self.disable, self.interval = disable, float(interval)
        self.n = 0
        self.postfix = ""
        self.leave, self._printed, self._last_n = bool(leave), False, -1
        self.t0 = self._last = time.perf_counter()
        self._closed = False

    def _line(self) -> str:
        done = f"{self.n}/{self.total}" if self.total else f"{self.n}"
        pct = f" ({100.0 * self.n / self.total:.0f}%)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.desc}: {done} {self.unit}{pct}, {time.perf_counter() - self.t0:.1f} s{post}"

    def _emit(self, force: bool = False) -> None:
        if self.disable:
            return
        now = time.perf_counter()
        if force or now - self._last >= self.interval:
            print(self._line(), file=self.file, flush=True)
            self._last, self._printed, self._last_n = now, True, self.n

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        self._emit()

    def set_postfix(self, **kw: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self.n != self._last_n:  # the last count not shown yet
                self._emit(force=self.leave or self._printed)

    def __iter__(self) -> Iterator:
        for x in self.iterable or ():
            yield x
            self.update(1)
        self.close()

    def __enter__(self) -> "PlainProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress(iterable: Iterable | None = None, **kw: Any):
    """tqdm on a terminal, :class:`PlainProgress` otherwise (same arguments)."""
    file = kw.get("file") or sys.stderr
    isatty = getattr(file, "isatty", None)
    if isatty is not None and isatty():
        return tqdm(iterable, **kw)
    plain = {k: v for k, v in kw.items() if k in ("total", "desc", "unit", "file", "disable", "leave")}
    return PlainProgress(iterable, **plain)
