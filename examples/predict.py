"""Predict a network's latency on a phone from its shipped latency table, with the per-layer breakdown.

    .venv/bin/python examples/predict.py                          # MobileNetV2 on a Pixel 1
    .venv/bin/python examples/predict.py ARCH.json --device note10 --input-size 192

ARCH is an arch file, a search run directory or a shipped arch name (configs/archs/).
"""

import argparse
import json

import nse_hw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("arch", nargs="?", default="mobilenetv2-1.0-224")
    ap.add_argument("--device", default="pixel1")
    ap.add_argument("--input-size", type=int)
    ap.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = ap.parse_args()
    try:
        report = nse_hw.predict_latency(args.arch, device=args.device, input_size=args.input_size)
    except nse_hw.NseError as exc:  # bad input: one line, exit code 2
        raise SystemExit(f"error: {exc}") from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return
    for name, ms in report.components:
        print(f"{name:<12} {ms:8.3f} ms")
    how = "calibrated" if report.calibrated else "sum of the table's entries"
    print(f"{'total':<12} {report.total_ms:8.3f} ms  ({how}; {report.provenance['device']}, "
          f"{report.provenance['runtime']}, table {report.table})")
    if report.filled_keys:
        print(f"{len(report.filled_keys)} key(s) were not in the table and were predicted by its transfer model")


if __name__ == "__main__":
    main()
