"""Intervals and tests of the analysis tables (scipy): a rate's Wilson interval and exact binomial
test, a mean's t interval."""

from __future__ import annotations

import numpy as np

LEVEL = 0.95


def wilson(k: int, n: int, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of the rate k/n (nan, nan when n = 0)."""
    from scipy.stats import binomtest  # deferred: scipy is slow to import; only this function needs it

    if n <= 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def mean_interval(x, level: float = LEVEL) -> tuple[float, float, float, float, int]:
    """(mean, low, high, sd, n) of the finite values of ``x``: Student-t interval of the mean,
    sd with ddof 1 (low = high = mean and sd nan for one value; all nan for none)."""
    from scipy.stats import t  # deferred: scipy is slow to import; only this function needs it

    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), float("nan"), 0
    m = float(x.mean())
    if n == 1:
        return m, m, m, float("nan"), 1
    sd = float(x.std(ddof=1))
    half = float(t.ppf(0.5 + level / 2, n - 1) * sd / np.sqrt(n))
    return m, m - half, m + half, sd, n


def difference_interval(ma: float, sa: float, na: int, mb: float, sb: float, nb: int,
                        level: float = LEVEL) -> tuple[float, float, float]:
    """(mb - ma, low, high): Welch interval of the difference of two means given each
    group's mean, standard deviation (ddof 1) and size (nan when a group has < 2 values)."""
    from scipy.stats import t  # deferred: scipy is slow to import; only this function needs it

    if na < 2 or nb < 2 or not all(np.isfinite([ma, sa, mb, sb])):
        return float("nan"), float("nan"), float("nan")
    va, vb = sa**2 / na, sb**2 / nb
    d = float(mb - ma)
    se = float(np.sqrt(va + vb))
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / ((va**2) / (na - 1) + (vb**2) / (nb - 1))
    half = float(t.ppf(0.5 + level / 2, df) * se)
    return d, d - half, d + half


def binomial_p(k: int, n: int, p0: float, alternative: str = "greater") -> float:
    """Exact binomial test of k successes in n trials against the rate ``p0`` (nan when n = 0
    or p0 is not a rate); ``alternative``: greater | less | two-sided."""
    from scipy.stats import binomtest  # deferred: scipy is slow to import; only this function needs it

    if n <= 0 or not np.isfinite(p0) or not 0.0 <= p0 <= 1.0:
        return float("nan")
    return float(binomtest(int(k), int(n), float(p0), alternative=alternative).pvalue)
