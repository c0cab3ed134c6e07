#!/usr/bin/env bash
# Issue 21 part 3: start (or resume) the ct48 search-quality benchmark, one driver per core, from a frozen worktree.
#
#   bash benchmarks/search/ct48_drivers.sh COMMIT [WORKTREE] [RUNS]
#
# COMMIT: the frozen commit (RESULTS-search.md names it). WORKTREE (default /work/wt-p3): a detached worktree of
# COMMIT with its own .venv, made here if missing. RUNS (default ~/p3-runs): the run directories, outside the work
# tree (a machine handed on keeps them, a new work tree does not; without them the JSON still resumes the benchmark,
# and only the jobs in flight start over). Results go to this checkout's search-quality-ct48.json; each driver's log
# is RUNS/driver-cpuN.log. A driver already running on a core is left alone.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 3 ]; then echo "usage: ct48_drivers.sh COMMIT [WORKTREE] [RUNS]" >&2; exit 2; fi
commit=$1
wt=${2:-/work/wt-p3}
runs=${3:-$HOME/p3-runs}
here=$(cd "$(dirname "$0")/../.." && pwd)
want=$(git -C "$here" rev-parse --verify --quiet "$commit^{commit}") || { echo "error: no commit $commit" >&2; exit 2; }
[ -d "$wt" ] || git -C "$here" worktree add --detach "$wt" "$want"
if [ "$(git -C "$wt" rev-parse HEAD)" != "$want" ]; then
    echo "error: $wt is at $(git -C "$wt" rev-parse --short HEAD), not $commit" >&2
    exit 2
fi
[ -x "$wt/.venv/bin/python" ] || (cd "$wt" && bash scripts/setup.sh)
mkdir -p "$runs"
if [ ! -L "$wt/runs" ]; then
    if [ -e "$wt/runs" ]; then
        echo "error: $wt/runs is a folder, not a link to $runs: move its contents there first" >&2
        exit 2
    fi
    ln -s "$runs" "$wt/runs"
fi
for c in 0 1; do
    if pgrep -f "search_quality.py --protocol ct48 --cpu $c" > /dev/null; then
        echo "core $c: a driver is running"
        continue
    fi
    # One simple command in the background, every stream redirected: a backgrounded `cd && nohup` list would keep a
    # subshell alive holding the caller's stdout, and `ct48_drivers.sh | tail` would then never return.
    (cd "$wt" || exit 2
     nohup taskset -c "$c" .venv/bin/python benchmarks/search/search_quality.py --protocol ct48 --cpu "$c" \
        --out "$here/benchmarks/search/search-quality-ct48.json" < /dev/null >> "$runs/driver-cpu$c.log" 2>&1 &)
    echo "core $c: driver started (log $runs/driver-cpu$c.log)"
    sleep 5  # the first driver takes its seed's lock before the second looks
done
