"""Does ``train.channels_last`` change what a retrain reaches? A paired, pre-registered equivalence study.

Channels-last halves a CPU training step again (``fast_convs.py``: 0.44-0.47x the channels-first fast step), but
its float32 kernels round 2-12x worse through train-mode BN on 1x1/2x2 maps. One step's gradient cannot say whether
that moves a retrain's accuracy; this study retrains one searched arch both ways, paired by seed (the same initial
weights, shuffles and crops), and tests equivalence.

PROTOCOL below is fixed before the first run (committed with this file): the arch of ``search-quality.json``
record search/80ms/nse/seed0 (the 32 px Fashion-MNIST proxy, Pixel 1 80 ms), ``configs/train/fashion-mnist.yaml``
with ``--preset bench`` (all 54000 training images, width 0.5, 4 epochs: retrain-seed SD 0.41-0.48 points over 8
archs x 3 seeds, proxy_spread ``data54k``), and the same file with ``channels_last: true``; retrain seeds 0-19, each
seed's two retrains one after the other on one core (channels-first first on even seeds), 1 thread, the real CLI.

Decision rule: with d = top-1(channels-last) - top-1(channels-first) per seed, if two one-sided t tests show the
mean of d inside ±0.5 points (TOST p < 0.05), the Fashion-MNIST recipe turns ``channels_last`` on (the cluttered
tasks' recipe stays off: not measured); otherwise it stays off and the study reports the difference and its 90%
interval. 20 seeds: the differences' SD is at most sqrt(2) x 0.5 = 0.71 points if rounding decorrelates the two
runs fully, and TOST then has 84% power when the two are equal (``equivalence_power``); a smaller SD, more.
Also reported: each pair's CPU-second ratio (channels-last / channels-first, pairs on one host kind).

    taskset -c 0 .venv/bin/python benchmarks/train-export/channels_last_retrain.py --cpu 0   # a driver per core
    .venv/bin/python benchmarks/train-export/channels_last_retrain.py summary

Resumable (a killed retrain resumes from its last epoch; the JSON keeps every finished one); two drivers share
the seeds through a lock per seed. Results: benchmarks/train-export/channels-last-retrain.json and .png.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common.jobs import Job, Store, record_arch, retrain, same_host_kind  # noqa: E402

from nse_hw.atomic import atomic_write_json, atomic_write_text  # noqa: E402
from nse_hw.evolve.quality import equivalence_p, equivalence_power, mean_sd, paired_difference  # noqa: E402
from nse_hw.train.recipe import TRAIN_CONFIGS  # noqa: E402

HERE = Path(__file__).resolve().parent
OUT = HERE / "channels-last-retrain.json"
FORMAT = "nse-hw/channels-last-retrain/1"
PROTOCOL: dict[str, Any] = {
    "arch_from": "benchmarks/search/search-quality.json:search/80ms/nse/seed0",
    "config": "configs/train/fashion-mnist.yaml", "preset": "bench", "arms": ["nchw", "nhwc"],
    "nhwc_config": "the same file with `channels_last: true` appended",
    "seeds": list(range(20)), "order": "nchw first on even seeds, nhwc first on odd; both on one core",
    "threads": 1, "margin_points": 0.5, "alpha": 0.05, "assumed_diff_sd_points": 0.71,
    "decision": "TOST p < 0.05 for |mean(nhwc - nchw)| < 0.5 points: fashion-mnist.yaml turns channels_last on; "
                "else it stays off",
}
ARMS = {"nchw": "channels-first", "nhwc": "channels-last"}


def _configs(runs: Path) -> dict[str, Path]:
    """The shipped recipe and its channels-last twin (written into ``runs``), by arm."""
    shipped = TRAIN_CONFIGS / "fashion-mnist.yaml"
    twin = runs / "fashion-mnist-channels-last.yaml"
    atomic_write_text(twin, shipped.read_text() + "channels_last: true\n")
    return {"nchw": shipped, "nhwc": twin}


def _arch(runs: Path) -> Path:
    src, rid = PROTOCOL["arch_from"].split(":")
    path = runs / "arch.json"
    atomic_write_json(path, record_arch(HERE.parents[1] / src, rid))
    return path


def drive(store: Store, runs: Path, cpu: int) -> None:
    arch, configs = _arch(runs), _configs(runs)
    for seed in PROTOCOL["seeds"]:
        with Job(runs, f"seed{seed}") as mine:
            if not mine:
                continue  # the other driver has it
            order = ("nchw", "nhwc") if seed % 2 == 0 else ("nhwc", "nchw")
            for arm in order:
                retrain(store, PROTOCOL, arch, runs / f"seed{seed}-{arm}", f"train/{arm}/seed{seed}", cpu,
                        recipe=["--config", str(configs[arm]), "--preset", PROTOCOL["preset"]],
                        retrain_seed=seed, arm=arm)


def planned_power() -> float:
    """TOST's power when the two are equal, at the protocol's pairs and assumed SD of the differences."""
    return equivalence_power(n=len(PROTOCOL["seeds"]), sd=PROTOCOL["assumed_diff_sd_points"] / 100,
                             margin=PROTOCOL["margin_points"] / 100)


def _by_arm(records: list[dict[str, Any]]) -> dict[str, dict[int, dict[str, Any]]]:
    """Each arm's records by retrain seed."""
    return {arm: {r["retrain_seed"]: r for r in records if r["arm"] == arm} for arm in ARMS}


def summarize(store: Store) -> dict[str, Any]:
    by = _by_arm(store.refresh()["records"])
    acc = {arm: {s: r["test_top1"] for s, r in by[arm].items()} for arm in ARMS}
    out: dict[str, Any] = {arm: mean_sd(list(acc[arm].values())) for arm in ARMS}
    out["nhwc_minus_nchw"] = diff = paired_difference(acc["nhwc"], acc["nchw"])
    pairs = [s for s in by["nchw"] if s in by["nhwc"]]
    ratios = [by["nhwc"][s]["cpu_s"] / by["nchw"][s]["cpu_s"] for s in pairs
              if same_host_kind(by["nhwc"][s].get("host"), by["nchw"][s].get("host"))]
    out["cpu_ratio_nhwc_over_nchw"] = ({"n": len(ratios), "median": statistics.median(ratios),
                                        "min": min(ratios), "max": max(ratios)} if ratios else None)
    out["cpu_s"] = {arm: statistics.median(r["cpu_s"] for r in by[arm].values()) if by[arm] else None
                    for arm in ARMS}
    margin = PROTOCOL["margin_points"] / 100
    done = len(pairs) == len(PROTOCOL["seeds"])
    if len(pairs) >= 2:
        d = [acc["nhwc"][s] - acc["nchw"][s] for s in pairs]
        out["equivalence"] = equivalence_p(d, margin=margin)
        ci = stats.ttest_1samp(d, 0.0).confidence_interval(0.90)
        out["ci90"] = [float(ci.low), float(ci.high)]
        # the planning assumption checked: what the protocol's pairs give at the SD seen so far
        out["protocol_power_at_observed_sd"] = (equivalence_power(n=len(PROTOCOL["seeds"]), sd=diff["sd"],
                                                                  margin=margin) if diff["sd"] else None)
    out["pairs_done"], out["complete"] = len(pairs), done
    eq = out.get("equivalence")
    out["verdict"] = ("incomplete: no verdict" if not done else
                      "equivalent: turn channels_last on in fashion-mnist.yaml" if eq and eq["p"] < PROTOCOL["alpha"]
                      else "not shown equivalent: channels_last stays off")
    store.write(lambda data: data.update(summary=out))
    return out


def plot(store: Store, s: dict[str, Any], path: Path) -> None:
    """Each seed's pair: channels-first top-1 against channels-last, the line of equal accuracy and the ±margin band
    around it (the pairs must fall about it, not on it: the two runs' rounding decorrelates them)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = _by_arm(store.data["records"])
    acc = {arm: {k: 100 * r["test_top1"] for k, r in recs.items()} for arm, recs in by.items()}
    seeds = sorted(set(acc["nchw"]) & set(acc["nhwc"]))
    fig, ax = plt.subplots(figsize=(4.5, 4.2))
    if seeds:
        xs, ys = [acc["nchw"][k] for k in seeds], [acc["nhwc"][k] for k in seeds]
        lo, hi = min(xs + ys) - 0.3, max(xs + ys) + 0.3
        m = PROTOCOL["margin_points"]
        ax.fill_between([lo, hi], [lo - m, hi - m], [lo + m, hi + m], color="0.9",
                        label=f"±{m} points (the margin for the mean)")
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
        ax.scatter(xs, ys, s=18, zorder=3, label="one seed")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.legend(fontsize=8, loc="upper left")
    eq = s.get("equivalence")
    ax.set_title(f"{len(seeds)} of {len(PROTOCOL['seeds'])} seeds" + (f", TOST p {eq['p']:.3g}" if eq else ""),
                 fontsize=9)
    ax.set_xlabel("channels-first test top-1 (%)")
    ax.set_ylabel("channels-last test top-1 (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(s: dict[str, Any]) -> None:
    def pts(m: dict[str, Any]) -> str:
        return "-" if m.get("mean") is None else f"{100 * m['mean']:.2f} ± {100 * (m['sd'] or 0):.2f} (n {m['n']})"

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    for arm, name in ARMS.items():
        print(f"{name:15s} test top-1 {pts(s[arm])}, median CPU s {num(s['cpu_s'][arm], '.0f')}")
    d = s["nhwc_minus_nchw"]
    print(f"channels-last - channels-first: {pts(d)} points, t p {num(d['t_p'], '.3g')}, "
          f"Wilcoxon p {num(d['wilcoxon_p'], '.3g')}")
    if "equivalence" in s:
        lo, hi = (100 * v for v in s["ci90"])
        print(f"TOST ±{PROTOCOL['margin_points']} points: p {s['equivalence']['p']:.3g}; 90% interval "
              f"[{lo:.2f}, {hi:.2f}]; power of {len(PROTOCOL['seeds'])} pairs at this SD "
              f"{num(s['protocol_power_at_observed_sd'], '.2f')} "
              f"(planned at {PROTOCOL['assumed_diff_sd_points']} points: {planned_power():.2f})")
    if s["cpu_ratio_nhwc_over_nchw"]:
        r = s["cpu_ratio_nhwc_over_nchw"]
        print(f"CPU s channels-last / channels-first: median {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}, "
              f"n {r['n']})")
    print(f"{s['pairs_done']} of {len(PROTOCOL['seeds'])} pairs; {s['verdict']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", nargs="?", choices=["run", "summary"], default="run")
    ap.add_argument("--cpu", type=int, default=0, help="the core this driver's retrains are pinned to")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--runs", default="runs/channels-last-retrain")
    args = ap.parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    store = Store(Path(args.out), PROTOCOL, lock=runs / "results.lock", fmt=FORMAT)
    if args.command == "run":
        drive(store, runs, args.cpu)
    s = summarize(store)
    report(s)
    plot(store, s, Path(args.out).with_suffix(".png"))


if __name__ == "__main__":
    main()
