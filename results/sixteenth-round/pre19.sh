#!/usr/bin/env bash
# Scenario A at N = 25, verification on, interleaved: 72610c8 ("pre19": push only, the tree the
# issue's figures describe; "verification on" there checks only a block's structure), 6c62a22
# ("old": pull and orderer-signature authentication) and this tree ("head"). loadgen of this tree.
set -u
cd /work/main
LG=./target/release/loadgen
HEAD_BIN=/work/main/target/release/gossip-node
OUT=${OUT:-/tmp/pairs/pre19}
REPS=${REPS:-4}
mkdir -p $OUT
run() { # name bin
  $LG run loadgen/scenarios/scenario-a-n25-verify-on.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$? $(python3 -c "import json;f=json.load(open('$OUT/$1/run.json'))['figures'];print(*[f'{k}={f.get(k)}' for k in ('completeness','in_order_share','latency_p50_ms','time_to_all_p99_ms','cpu_pct_per_node_mean')])" 2>/dev/null)"
}
for r in $(seq 1 $REPS); do
  run pre19-$r /tmp/gossip-node-72610c8
  run old-$r /tmp/gossip-node-6c62a22
  run head-$r $HEAD_BIN
done
