#!/usr/bin/env bash
# Re-run every benchmark report that reads only committed data (summaries of the job JSONs, the phone-transfer
# analyses, a table's spread) in a copy of this checkout, keep each one's output, and list the benchmark files the
# reruns rewrote differently. Nothing here trains, searches or times; the committed files are never touched.
#
#   benchmarks/common/check_summaries.sh [OUT]        # from anywhere in the checkout; OUT: /tmp/nse-hw-summaries
#
# OUT/stdout/<name>.txt: each report's stdout and stderr ("N s this call" lines blanked: wall time); OUT/rc.txt:
# exit codes; OUT/rewritten.txt: `diff -rq` of the copy's benchmarks/ before and after the reruns (empty: every
# JSON and figure the reports rewrite came out byte-identical). The phone analyses read
# ../shared/device-data beside the checkout (SHARED=DIR to point elsewhere). Pinned to core 0, one thread.
set -u
REPO=$(git rev-parse --show-toplevel)
OUT=${1:-/tmp/nse-hw-summaries}
PY=${PY:-$REPO/.venv/bin/python}
SHARED=${SHARED:-$REPO/../shared}
rm -rf "$OUT" && mkdir -p "$OUT/tree" "$OUT/stdout"
(cd "$REPO" && git ls-files -co --exclude-standard | while read -r f; do
    [ -e "$f" ] && cp --parents -P "$f" "$OUT/tree/"; done)
ln -s "$(cd "$SHARED" && pwd)" "$OUT/shared"  # the copy's ../shared
cp -a "$OUT/tree/benchmarks" "$OUT/before"
cd "$OUT/tree" || exit 1
: > "$OUT/rc.txt"

run() {  # NAME SCRIPT ARGS...: one report, pinned, its output kept
    local name=$1; shift
    taskset -c 0 env OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore "$PY" "$@" 2>&1 \
        | sed -E 's/\(([0-9]+) s this call\)/(N s this call)/' > "$OUT/stdout/$name.txt"
    echo "$name ${PIPESTATUS[0]}" | tee -a "$OUT/rc.txt"
}

B=benchmarks
# latency
run profile_time-litert $B/latency/profile_time.py --table latency_tables/host-litert.json
run profile_time-onnxruntime $B/latency/profile_time.py --table latency_tables/host-onnxruntime.json
# phones
run transfer_loo $B/phones/transfer_loo.py
run transfer_cross $B/phones/transfer_cross.py
run transfer_networks $B/phones/transfer_networks.py
run phone_grid $B/phones/phone_grid.py
run proxyless_width $B/phones/proxyless_width.py
run note10_resolution $B/phones/note10_resolution.py
run host_partial_transfer $B/phones/host_partial_transfer.py
run host_resolution_transfer $B/phones/host_resolution_transfer.py
run join_anchor $B/phones/join_anchor.py
# search: the job JSONs' summaries
run search_quality $B/search/search_quality.py summary
run round_picks $B/search/round_picks.py summary
run rerank_effect $B/search/rerank_effect.py summary
run review_ablations $B/search/review_ablations.py summary
run path_sampling $B/search/path_sampling.py --summary
for p in main res64 data54k data54k-seed2; do
    run proxy_spread-$p $B/search/proxy_spread.py --summary --protocol $p
done
run short_score_ranking $B/search/short_score_ranking.py                    # every score stored: summary only
run short_score_ranking-bench $B/search/short_score_ranking.py --set benchmark
run extras_effect $B/search/extras_effect.py                                # needs the search run directories

diff -rq -x __pycache__ "$OUT/before" "$OUT/tree/benchmarks" | sed "s#$OUT/before#benchmarks#; s#$OUT/tree/##g" \
    > "$OUT/rewritten.txt"
echo "rewritten differently: $(wc -l < "$OUT/rewritten.txt") (see $OUT/rewritten.txt)"
