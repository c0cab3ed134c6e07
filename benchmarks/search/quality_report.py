"""The tables and plot of search_quality.py's summary (also printed by the studies built on its JSON): per budget,
each method's retrained test top-1 by seed, paired differences with their p-values, round gains, the rank study,
the benchmark's progress, and the results as a Markdown table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nse_hw.hostcpu import uarch


def plot_summary(s: dict[str, Any], path: Path) -> None:
    """Per budget: each method's retrained test top-1 by seed (a line joins one seed's methods: the pairing the
    paired differences use), method means as bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = list(s["budgets"].items())
    fig, axes = plt.subplots(1, len(budgets), figsize=(5.5 * len(budgets), 4), squeeze=False)
    for ax, (budget, b) in zip(axes[0], budgets, strict=True):
        methods = list(b["methods"])
        seeds = sorted({sd for m in methods for sd in b["methods"][m]["test_top1"]["per_seed"]}, key=str)
        for sd in seeds:
            ys = [100 * b["methods"][m]["test_top1"]["per_seed"].get(sd, float("nan")) for m in methods]
            ax.plot(range(len(methods)), ys, "o-", alpha=0.6, label=f"seed {sd}")
        means = [b["methods"][m]["test_top1"]["mean"] for m in methods]
        ax.bar(range(len(methods)), [100 * v if v is not None else 0 for v in means], color="lightgray", zorder=0)
        ax.set_xticks(range(len(methods)), methods, rotation=20)
        finite = [100 * v for m in methods for v in b["methods"][m]["test_top1"]["per_seed"].values()]
        if finite:
            ax.set_ylim(min(finite) - 1, max(finite) + 1)
        else:
            ax.set_yticks([])
            ax.text(0.5, 0.5, "not run yet", ha="center", va="center", transform=ax.transAxes, color="gray")
        ax.set_title(f"{budget}: retrained test top-1 (%)")
        if seeds:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pm(d: dict[str, Any], scale: float = 100.0) -> str:
    if d.get("mean") is None:
        return "-"
    return f"{scale * d['mean']:.2f} ± {scale * d['sd']:.2f}" if d.get("sd") is not None else f"{scale * d['mean']:.2f}"


def _sd_pt(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _p(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def markdown_table(b: dict[str, Any]) -> str:
    """One budget's methods: seeds, retrained test top-1 (mean ± SD), NSE minus the method paired by seed with
    its t and Wilcoxon p, and the search process's CPU seconds over NSE's (same seed)."""
    rows = ["| method | seeds | test top-1 % | NSE − method (points) | paired t p | Wilcoxon p | CPU / NSE's |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for m, d in b["methods"].items():
        diff = b["nse_minus"].get(m)
        paired = "-" if diff is None else f"{_pm(diff)} (n {diff['n']})"
        rows.append(f"| {m} | {d['test_top1']['n']} | {_pm(d['test_top1'])} | {paired} | "
                    f"{_p(diff and diff['t_p'])} | {_p(diff and diff['wilcoxon_p'])} | "
                    f"{_pm(d.get('process_cpu_vs_nse', d['search_cpu_vs_nse']), 1)} |")
    return "\n".join(rows)


def records_table(records: list[dict[str, Any]], budget: str, methods: list[str]) -> str:
    """One budget's records by seed (rows) and method (columns, in ``methods``' order), as Markdown: the retrained
    test top-1 (the seed's own retrain; "retrain waits" before it), the search's CPU seconds ("no search" for a
    network scaled, not searched) and the CPU it ran on; a retrain run on another kind of CPU names its own."""
    cells: dict[int, dict[str, str]] = {}
    searches = {(r["method"], r["seed"]): r for r in records if r["kind"] == "search" and r["budget"] == budget}
    trains = {(r["method"], r["seed"]): r for r in records if r["kind"] == "train" and r["budget"] == budget
              and r.get("retrain_seed") == r["seed"]}
    for m, seed in set(searches) | set(trains):
        srch, tr = searches.get((m, seed)), trains.get((m, seed))
        searched = bool(srch and srch["cpu_s"])  # a scaled network's record holds no search
        at = _cpu((srch or tr or {}).get("host"))
        where = f", {at}" if at else ""  # records from before hosts were recorded
        spent = f"{srch['cpu_s']:.0f} s{where}" if searched else f"no search{where}"
        if tr and searched and (tr_at := _cpu(tr.get("host"))) != at:
            spent += f"; retrained on {tr_at}"
        top1 = f"**{100 * tr['test_top1']:.2f}**" if tr else "retrain waits"
        cells.setdefault(seed, {})[m] = f"{top1} ({spent})"
    rows = ["| seed | " + " | ".join(methods) + " |", "|---:|" + "---|" * len(methods)]
    for seed in sorted(cells):
        rows.append(f"| {seed} | " + " | ".join(cells[seed].get(m, "") for m in methods) + " |")
    return "\n".join(rows)


def _cpu(fp: dict[str, Any] | None) -> str | None:
    """"Zen 4" (or "family F model M"); None for a record without a host."""
    return None if fp is None else uarch(fp) or f"family {fp.get('family')} model {fp.get('model')}"


def print_summary(s: dict[str, Any]) -> None:
    for budget, b in s["budgets"].items():
        print(f"\n{budget}: retrained test top-1 % (mean ± SD over seeds), predicted latency / budget, CPU s of the "
              f"whole search process, search CPU s (result.json search_s) / NSE's (same seed)")
        for m, d in b["methods"].items():
            print(f"  {m:<15} {_pm(d['test_top1']):>16}  ratio {_pm(d['budget_ratio'], 1):>14}  "
                  f"CPU {_pm(d['search_cpu_s'], 1):>14}  x{_pm(d['search_cpu_vs_nse'], 1):>12} "
                  f"(process x{_pm(d.get('process_cpu_vs_nse', {}), 1)})  "
                  f"finalist retrain SD {_sd_pt(d['finalist_retrain_sd'])} pt")
        for m, d in b["nse_minus"].items():
            print(f"  NSE - {m:<15} {_pm(d):>16} pt over {d['n']} seeds; paired t p {_p(d['t_p'])}, "
                  f"Wilcoxon p {_p(d['wilcoxon_p'])}")
        for g in b.get("nse_paired_round_gains", []):
            print(f"  NSE round {g['round']}, new best vs last front re-scored (paired, same supernet): "
                  f"{_pm(g)} pt; > 0 in {g['positive']} of {g['n']} seeds")
        for g in b["nse_round_gains"]:
            print(f"  NSE round {g['from_round']} -> {g['to_round']}: {_pm(g)} pt (supernet score); "
                  f"t p {_p(g['t_p'])}, Wilcoxon p {_p(g['wilcoxon_p'])}")
    for budget, b in s["budgets"].items():
        print(f"\n{budget} as Markdown (the README and results tables):\n{markdown_table(b)}")
    for kind, g in s.get("progress", {}).items():
        left = "-" if g["cpu_h_left"] is None else f"~{g['cpu_h_left']}"
        hosts = ", ".join(f"{n} on {h}" for h, n in g.get("hosts", {}).items())
        here = g.get("cpu_h_left_here")
        here = "" if here is None else f" (~{here} at the means of the jobs done on this host's kind, {g['here']})"
        print(f"{kind}: {g['done']} of {g['planned']} done ({g['cpu_h']} CPU h{'; ' + hosts if hosts else ''}); "
              f"{left} CPU h left{here}")
    r = s["rank"]
    if r and r.get("kendall_tau") is not None:
        print(f"\nranking ({r['budget']}, seed {r['seed']}, {r['archs']} archs): Kendall τ {r['kendall_tau']:.3f} "
              f"(p {_p(r['kendall_p'])}), Spearman ρ {r['spearman_rho']:.3f} (p {_p(r['spearman_p'])})")
