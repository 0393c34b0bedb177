"""The findings document: one section per paper finding, every sentence computed from a table.

- Finding 1 (fusion): the ablation's findings (``results/ablation/findings.md``), included as written.
- Finding 2 (class-specific and generic units): from the kind fractions of ``units.csv``
  (``units.kind_fractions``, Wilson 95% intervals). A layer *has learned* class-specific (generic)
  units when the trained network's fraction's interval lies wholly above the untrained network's.
- Finding 3 (invariance grows with depth): from ``invariance.csv``. For each model and factor the
  change of the mean index from the first to the top analysed layer below the class scores (Welch
  95% interval of the difference): it *rises* when the interval lies above 0, *falls* when below,
  otherwise no change is shown. The top layer is *above the untrained control* when the trained
  minus untrained interval lies above 0. Speed selectivity where speed matters: at the top layer,
  the index of ``speed_<dir>`` (the slow class of a direction with a fast class) is *below* the
  index of ``speed`` when their difference's interval lies below 0.

A claim is written only when its interval supports it; otherwise the sentence says that the
numbers do not show it, with the numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..plots import _pyplot, save_figure
from ..store import atomic_path
from .stats import difference_interval
from .units import KINDS

OUTPUT_LAYER = "output"


def _pct(x: float) -> str:
    return "nan" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _ci(row) -> str:
    return f"{row['mean']:.2f} [{row['lo']:.2f}, {row['hi']:.2f}]"


def _top_layers(df: pd.DataFrame) -> pd.DataFrame:
    return df[df.layer != OUTPUT_LAYER]


# --------------------------------------------------------------------------- finding 2


def finding2(fractions: pd.DataFrame) -> list[str]:
    """Sentences of finding 2 from the kind fractions (model, network, layer, kind, count, units, lo, hi)."""
    if fractions is None or not len(fractions):
        return ["No unit table: nothing measured."]
    out = []
    for model, g in fractions.groupby("model", sort=False):
        for kind in ("specific", "generic"):
            gk = g[g.kind == kind]
            tr = gk[gk.network == "trained"].set_index("layer")
            un = gk[gk.network == "untrained"].set_index("layer")
            learned, shown = [], []
            for layer, r in tr.iterrows():
                if layer not in un.index:
                    continue
                u = un.loc[layer]
                shown.append(f"{layer} {int(r['count'])}/{int(r.units)} ({_pct(r.fraction)}, "
                             f"[{_pct(r.lo)}, {_pct(r.hi)}]) vs untrained {int(u['count'])}/{int(u.units)} "
                             f"([{_pct(u.lo)}, {_pct(u.hi)}])")
                if r.lo > u.hi:
                    learned.append(layer)
            what = "class-specific" if kind == "specific" else "generic (shared-factor)"
            if learned:
                out.append(f"{model}: the trained network has more {what} units than the untrained one in "
                           f"{', '.join(learned)} (intervals apart); per layer: " + "; ".join(shown) + ".")
            else:
                out.append(f"{model}: the numbers do not show more {what} units than in the untrained network "
                           f"in any layer; per layer: " + "; ".join(shown) + ".")
    return out


# --------------------------------------------------------------------------- finding 3


def _diff(a, b):
    return difference_interval(a["mean"], a.sd, int(a.units), b["mean"], b.sd, int(b.units))


def finding3(inv: pd.DataFrame, min_change: float = 0.05) -> list[str]:
    """Sentences of finding 3 from invariance.csv; differences smaller than ``min_change``
    (index units) are not claimed, whatever their interval."""
    if inv is None or not len(inv):
        return ["No invariance table: nothing measured."]
    out = []
    inv = inv.sort_values("depth", kind="stable")
    for model, g in inv.groupby("model", sort=False):
        tr = _top_layers(g[g.network == "trained"])
        un = _top_layers(g[g.network == "untrained"])
        for factor, f in tr.groupby("factor", sort=False):
            f = f[f.units >= 2]
            if len(f) < 2:
                continue
            first, top = f.iloc[0], f.iloc[-1]
            d, lo, hi = _diff(first, top)
            ctrl = un[(un.factor == factor) & (un.layer == top.layer)]
            where = f"{model}, {factor}: {first.layer} {_ci(first)} -> {top.layer} {_ci(top)}"
            if np.isfinite(lo) and lo > 0 and d >= min_change:
                s = f"{where}: invariance rises with depth (difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}])"
            elif np.isfinite(hi) and hi < 0 and d <= -min_change:
                s = f"{where}: invariance falls with depth (difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}])"
            else:
                s = f"{where}: the numbers do not show a change with depth (difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}])"
            if len(ctrl) and int(ctrl.iloc[0].units) >= 2:
                c = ctrl.iloc[0]
                cd, clo, chi = _diff(c, top)
                if np.isfinite(clo) and clo > 0 and cd >= min_change:
                    s += f"; at {top.layer} above the untrained control {_ci(c)} ({cd:+.2f} [{clo:+.2f}, {chi:+.2f}])"
                else:
                    s += (f"; at {top.layer} not shown above the untrained control {_ci(c)} "
                          f"({cd:+.2f} [{clo:+.2f}, {chi:+.2f}])")
            out.append(s + ".")
        # speed selectivity where speed matters, at the top layer and at the class scores
        for layer in [l for l in (tr.layer.iloc[-1] if len(tr) else None, OUTPUT_LAYER) if l]:
            at = g[(g.network == "trained") & (g.layer == layer)].set_index("factor")
            if "speed" not in at.index:
                continue
            for factor in [x for x in at.index if str(x).startswith("speed_")]:
                a, b = at.loc["speed"], at.loc[factor]
                d, lo, hi = _diff(a, b)
                where = f"{model}, {layer}: {factor} {_ci(b)} vs speed {_ci(a)}"
                if np.isfinite(hi) and hi < 0 and d <= -min_change:
                    out.append(f"{where}: units stay speed-selective where speed tells the classes apart "
                               f"(difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}]).")
                else:
                    out.append(f"{where}: the numbers do not show more speed selectivity where speed matters "
                               f"(difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}]).")
        sp = g[(g.network == "trained") & g.factor.astype(str).str.startswith("speed")
               & np.isfinite(g.preferred_speed_spread)]
        if len(sp):
            parts = [f"{r.layer} {r.preferred_speed_spread:.2f}" for _, r in sp[sp.factor == "speed"].iterrows()]
            if parts:
                out.append(f"{model}: spread of the units' preferred speed (std of log2 speed, speed probes) by "
                           f"layer: " + ", ".join(parts) + ".")
    return out


def checks_sentences(checks: pd.DataFrame) -> list[str]:
    if checks is None or not len(checks):
        return ["No generic or class-specific unit was found at the top layers to visualize."]
    out = []
    for _, r in checks.iterrows():
        verdict = {True: "shows", False: "does not show"}.get(r.passed if isinstance(r.passed, bool)
                                                              else str(r.passed) == "True", "")
        if r.judged == "none" or str(r.passed) in ("nan", "None"):
            out.append(f"{r.model} {r.layer} #{r.unit} ({r.kind}, {r.factor}): no judge for this factor.")
        else:
            out.append(f"{r.model} {r.layer} #{r.unit} ({r.kind}, {r.factor}): its activation-maximisation input "
                       f"{verdict} the factor ({r.judged} check).")
    return out


# --------------------------------------------------------------------------- document and figures


def sections(ablation_md: str, fractions, inv, checks, min_change: float = 0.05) -> list[tuple[str, list[str]]]:
    """[(title, lines)]: plain sentences, ``### subheading`` and ``|`` table lines (markdown)."""
    abl = []
    for l in ablation_md.strip().splitlines():
        if l.startswith("# ") or not l.strip():
            continue
        abl.append("### " + l[3:] if l.startswith("## ") else l)
    return [
        ("Finding 1: cross-stream fusion learns spatiotemporal features (fusion ablation)",
         abl or ["No ablation findings given."]),
        ("Finding 2: class-specific and generic units (units.csv)", finding2(fractions) + checks_sentences(checks)),
        ("Finding 3: invariance grows with depth (invariance.csv)", finding3(inv, min_change)),
    ]


def to_markdown(secs) -> str:
    md = ["# Findings", ""]
    for title, lines in secs:
        md += [f"## {title}", ""]
        prev_table = False
        for l in lines:
            table = l.startswith("|")
            if prev_table and not table:
                md.append("")
            if table or l.startswith("### "):
                md += [l] if table else [l, ""]
            else:
                md += [l if l.startswith(("- ", "* ")) else f"- {l}"]
            prev_table = table
        md.append("")
    return "\n".join(md).rstrip() + "\n"


def to_rst(secs) -> str:
    esc = lambda t: re.sub(r"_(?=\W|$)", r"\\_", t.replace("|", "\\|"))
    out = ["Findings of this run", "====================", ""]
    for title, lines in secs:
        out += [title, "-" * len(title), ""]
        table = False
        for l in lines:
            if l.startswith("|"):
                if not table:
                    out += ["::", ""]
                out.append(f"    {l}")
                table = True
                continue
            if table:
                out.append("")
                table = False
            if l.startswith("### "):
                out += [f"**{esc(l[4:])}**", ""]
            else:
                out += [f"- {esc(l[2:] if l.startswith(('- ', '* ')) else l)}", ""]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def write_findings(path, ablation_md: str, fractions, inv, checks, rst: str = "", min_change: float = 0.05) -> None:
    secs = sections(ablation_md, fractions, inv, checks, min_change)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(to_markdown(secs))
    if rst:
        with atomic_path(rst) as tmp:
            Path(tmp).write_text(to_rst(secs))


def units_figure(fractions: pd.DataFrame, path) -> None:
    """Stacked bars: fraction of each unit kind per layer; one panel per model and network."""
    plt = _pyplot()
    models = list(dict.fromkeys(fractions.model)) if len(fractions) else ["none"]
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 2.6 * len(models)), squeeze=False)
    colours = {"specific": "#d62728", "generic": "#1f77b4", "other": "#bbbbbb", "silent": "#444444"}
    for i, m in enumerate(models):
        for j, net in enumerate(("trained", "untrained")):
            ax = axes[i, j]
            g = fractions[(fractions.model == m) & (fractions.network == net)] if len(fractions) else fractions
            layers = list(dict.fromkeys(g.layer)) if len(g) else []
            bottom = np.zeros(len(layers))
            for k in KINDS:
                v = np.array([float(g[(g.layer == l) & (g.kind == k)].fraction.sum()) for l in layers])
                ax.bar(range(len(layers)), v, bottom=bottom, color=colours[k], label=k)
                bottom += v
            ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right", fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_title(f"{m} ({net})", fontsize=9)
            ax.set_ylabel("fraction of units")
    axes[0, -1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path, 120)


def invariance_figure(inv: pd.DataFrame, path) -> None:
    """Mean invariance index (95% interval) against depth: one panel per model, one line per
    factor, trained solid, untrained dashed."""
    plt = _pyplot()
    models = list(dict.fromkeys(inv.model)) if len(inv) else ["none"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.6), squeeze=False)
    factors = list(dict.fromkeys(inv.factor)) if len(inv) else []
    cmap = plt.get_cmap("tab10")
    for i, m in enumerate(models):
        ax = axes[0, i]
        g = inv[inv.model == m] if len(inv) else inv
        layers = list(dict.fromkeys(g.sort_values("depth", kind="stable").layer)) if len(g) else []
        for fi, f in enumerate(factors):
            for net, ls in (("trained", "-"), ("untrained", "--")):
                h = g[(g.factor == f) & (g.network == net)]
                if not len(h):
                    continue
                x = [layers.index(l) for l in h.layer]
                ax.errorbar(x, h["mean"], yerr=[h["mean"] - h.lo, h.hi - h["mean"]], color=cmap(fi % 10), ls=ls,
                            marker="o", ms=3, capsize=2, label=f if net == "trained" else None)
        ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right", fontsize=7)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(m, fontsize=9)
        ax.set_ylabel("invariance index")
    axes[0, 0].legend(fontsize=7, title="factor (dashed: untrained)", title_fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, 120)
