"""Add this CPU's fingerprint to a shipped host table that a validation on this CPU showed fits it.

    python benchmarks/latency/fingerprint_shipped.py --table latency_tables/host-litert.json \
        --report <quick_table.py's report> --key full

The shipped tables were measured before tables recorded a fingerprint; they say only ``host.cpu: "AMD EPYC"``
(a KVM guest's model name, which hides the ISA set). A table is fingerprinted here only when whole networks
measured on this CPU, not used to fit its calibration, are predicted as well as the table's own validation
promised (calibrated: >= 95% within ±10%, MAPE <= 3%); the fingerprint carries that evidence as provenance.
Otherwise it is left unfingerprinted (commands then warn that it does not record its CPU).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from nse_hw.hostcpu import describe, same_cpu, this_cpu
from nse_hw.latency import load_table
from nse_hw.latency.table import utc_now


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--table", type=Path, required=True)
    ap.add_argument("--report", type=Path, required=True, help="quick_table.py or latency validate --out-json")
    ap.add_argument("--key", help="the table's section in a quick_table.py report (full or quick)")
    args = ap.parse_args()
    rep = json.loads(args.report.read_text())
    sec = rep[args.key] if args.key else rep["summary"]
    cal = sec["calibrated"]
    here = this_cpu()
    if rep.get("cpu") and not same_cpu(rep["cpu"], here):
        raise SystemExit(f"{args.report} was measured on another CPU ({describe(rep['cpu'])})")
    if not (cal and cal["within_10pct"] >= 0.95 and cal["mape"] <= 3.0):
        raise SystemExit(f"{args.table} does not validate on this CPU ({cal}); leaving it unfingerprinted")
    table = load_table(args.table)
    table.meta["host"]["cpu_fingerprint"] = {
        **here, "provenance": {
            "how": "added after measuring, not when the table was profiled: whole networks timed on this CPU "
                   "are predicted by the table as its own validation promised",
            "evidence": {"report": str(args.report), "networks": cal["n"], "seed": rep.get("seed"),
                         "within_10pct": cal["within_10pct"], "mape": round(cal["mape"], 2),
                         "raw_mape": round(sec["raw"]["mape"], 2)},
            "table_recorded": {"cpu": table.meta["host"].get("cpu"), "created": table.meta.get("created")},
            "added": utc_now(), "script": "benchmarks/latency/fingerprint_shipped.py"}}
    table.save(replace=True)
    print(f"{args.table}: fingerprinted as {describe(here)} ({100 * cal['within_10pct']:.0f}% within ±10%, "
          f"MAPE {cal['mape']:.2f}% on {cal['n']} networks)")


if __name__ == "__main__":
    main()
