"""The rows of ``verification.csv``: one per (model, check), from the runs' statuses.

Columns (``COLUMNS``):

* ``model``, ``role`` (``model``; ``control`` for the configured pooled control and the
  untrained network), ``check``;
* ``runs``, ``passes``, ``inconclusive`` (runs that failed the gate: never a pass);
* ``rate = passes / runs`` and its 95% Wilson interval ``lo``, ``hi``;
* ``null_rate``: the rate a network without the cause would reach, the mean of the runs'
  ``null_pass`` (direction 1/2, colour 1 / number of colours, co-location the judge's
  pass rate against circularly shifted motion maps; an inconclusive run counts 0);
* ``p_value``: exact one-sided binomial test of ``passes`` of ``runs`` above ``null_rate``;
* ``pass`` (``rate >= min_pass_rate``), ``expected`` (pass | fail: ``expectations``),
  ``as_expected``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..analysis.stats import binomial_p, wilson

COLUMNS = ["model", "role", "check", "runs", "passes", "inconclusive", "rate", "lo", "hi", "null_rate", "p_value",
           "pass", "expected", "as_expected"]


def check_row(model: str, role: str, check: str, statuses: Sequence[str], expected: str, min_pass_rate: float,
              null_passes: Sequence[float] | None = None) -> dict:
    """One row of ``verification.csv`` from the runs' statuses (pass | fail | inconclusive) and,
    when known, each run's pass probability under the null (``null_passes``)."""
    if expected not in ("pass", "fail"):
        raise ValueError(f"expected outcome must be pass or fail, got {expected!r}")
    n = len(statuses)
    k = sum(s == "pass" for s in statuses)
    inc = sum(s == "inconclusive" for s in statuses)
    rate = k / n if n else float("nan")
    ok = bool(n and rate >= min_pass_rate)
    lo, hi = wilson(k, n)
    if null_passes is not None and n:
        null = [0.0 if s == "inconclusive" else float(q) for s, q in zip(statuses, null_passes)]
        null_rate = float(np.mean(null))
    else:
        null_rate = float("nan")
    return dict(model=model, role=role, check=check, runs=n, passes=k, inconclusive=inc, rate=round(rate, 4),
                lo=round(lo, 4), hi=round(hi, 4), null_rate=round(null_rate, 4),
                p_value=binomial_p(k, n, null_rate), **{"pass": ok}, expected=expected,
                as_expected=(ok == (expected == "pass")))


def summarise(results, model: str, min_pass_rate: float = 0.8, expected: dict[str, str] | None = None,
              role: str = "model", checks: Sequence[str] = ("direction", "colour", "colocation")) -> pd.DataFrame:
    """One row per check of the ``RunResult``s ``results`` (see ``COLUMNS``)."""
    expected = expected or {}
    rows = []
    for check in checks:
        rs = [r for r in results if r.check == check]
        if not rs:
            continue
        rows.append(check_row(model, role, check, [r.status for r in rs], expected.get(check, "pass"),
                              min_pass_rate, [r.detail.get("null_pass", float("nan")) for r in rs]))
    return pd.DataFrame(rows, columns=COLUMNS)
