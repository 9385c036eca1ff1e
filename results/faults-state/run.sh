#!/usr/bin/env bash
# Issue 19's faults scenario, three runs one after the other (loadgen/scenarios/faults-state.toml):
# N = 10, 300 blocks of 10 KiB at 20 blocks/s from node 0, TLS and verification on, 5 % of every
# node's outgoing messages dropped, nodes 3 and 7 SIGKILLed at 3 s and 7 s and restarted 3 s later,
# state transfer on. Release builds; each run's run.json and printed summary land in run-<k>/.
set -u
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/faults-state-runs}
mkdir -p "$OUT"
for k in 1 2 3; do
  ./target/release/loadgen run loadgen/scenarios/faults-state.toml --results "$OUT" \
    --name faults-state-$k > "$OUT/faults-state-$k.out" 2>&1
  echo "$(date -u +%T) run $k rc=$?"
  mkdir -p results/faults-state/run-$k
  cp "$OUT/faults-state-$k/run.json" results/faults-state/run-$k/
  cp "$OUT/faults-state-$k.out" results/faults-state/run-$k/summary.txt
done
