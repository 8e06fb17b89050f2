#!/usr/bin/env bash
# Two builds of the CLI side by side, alternating, on the same graph versions: for a change
# whose cost hides in the day-to-day noise of a shared machine.
#   bash bench/ab_builds.sh OLD_CLI NEW_CLI GRAPH_V0 GRAPH_V1 [RUNS]
# e.g. the bench graph (`python bench/run.py` leaves it in /tmp/lightrag-backup-bench) and the
# operator venv of each build (see `operator_venv` in run.py). Prints each run; take medians.
set -euo pipefail
OLD=$1 NEW=$2 G0=$3 G1=$4 RUNS=${5:-5}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
timed() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
for _ in $(seq "$RUNS"); do
  for build in old new; do
    cli=$OLD; [ "$build" = new ] && cli=$NEW
    repo=$W/$build-repo
    rm -rf "$repo" "$W/$build-target"
    "$cli" --repo "$repo" init >/dev/null 2>&1; sync
    first=$(timed "$cli" --repo "$repo" --catalog "$W/$build.db" snapshot -g g -w "$G0"); sync
    change=$(timed "$cli" --repo "$repo" --catalog "$W/$build.db" snapshot -g g -w "$G1" --adopt); sync
    restore=$(timed "$cli" --repo "$repo" --catalog "$W/$build.db" restore -g g latest --target "$W/$build-target"); sync
    echo "$build first=$first change=$change restore=$restore"
  done
done
