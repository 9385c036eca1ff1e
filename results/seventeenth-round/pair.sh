#!/usr/bin/env bash
# Scenario A at N = 25, verification on, interleaved: the tree this session started from
# (431ff5f, "base") against this session's tree ("head": stage histograms and queue gauges on
# the hot path, leader election, the identity lifecycle). loadgen of this tree; each run.json
# also carries the head's stage means (stage_*_mean_us) read from /metrics.
set -u
cd /work/main
LG=./target/release/loadgen
BASE=${BASE:-/tmp/gossip-node-431ff5f}
HEAD_BIN=${HEAD_BIN:-/work/main/target/release/gossip-node}
OUT=${OUT:-/tmp/pairs/seventeenth}
REPS=${REPS:-3}
mkdir -p $OUT
run() { # name bin
  $LG run loadgen/scenarios/scenario-a-n25-verify-on.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$? load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "import json;f=json.load(open('$OUT/$1/run.json'))['figures'];print(*[f'{k}={f.get(k)}' for k in ('completeness','in_order_share','latency_p50_ms','time_to_all_p99_ms','cpu_pct_per_node_mean','stage_verify_pool_mean_us','stage_inbound_wait_mean_us','stage_handle_mean_us','stage_commit_mean_us','stage_verify_batch_len_mean')])" 2>/dev/null)"
}
for r in $(seq 1 $REPS); do
  run base-$r $BASE
  run head-$r $HEAD_BIN
done
