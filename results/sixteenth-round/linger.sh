#!/usr/bin/env bash
# Scenario A at N = 25, verification on, interleaved: 6c62a22 ("old": before state transfer and
# the ledger) against this tree's gossip-node with the committer's linger set through
# CORE_PEER_GOSSIP_STATE_COMMITLINGER (every node inherits loadgen's environment). The runs of
# "Sixteenth round" in results/cluster-runs.md used a build that read the linger and an idle
# scheduling priority for the committer from GOSSIP_COMMIT_LINGER_MS / GOSSIP_COMMIT_IDLE instead.
set -u
cd /work/main
LG=./target/release/loadgen
NEW=${NEW:-/work/main/target/release/gossip-node}
OLD=/tmp/gossip-node-6c62a22
OUT=${OUT:-/tmp/pairs/sixteenth}
REPS=${REPS:-2}
mkdir -p $OUT
run() { # name bin linger_ms
  CORE_PEER_GOSSIP_STATE_COMMITLINGER=${3}ms $LG run loadgen/scenarios/scenario-a-n25-verify-on.toml \
    --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$? $(python3 -c "import json;f=json.load(open('$OUT/$1/run.json'))['figures'];print(*[f'{k}={f.get(k)}' for k in ('completeness','latency_p50_ms','time_to_all_p99_ms','latency_via_pull_p50_ms','cpu_pct_per_node_mean')])" 2>/dev/null)"
}
for r in $(seq 1 $REPS); do
  run old-$r $OLD 0
  run base-$r $NEW 1
  run l250-$r $NEW 250
done
