#!/usr/bin/env bash
# This tree's gossip-node alone, N runs of scenario A (N = 25, verification on): completeness,
# p50, time-to-all p99, CPU and the rounds superseded. Usage: repeat.sh OUT_DIR N
cd /work/main
OUT=$1; N=$2; mkdir -p $OUT
for i in $(seq 1 $N); do
  ./target/release/loadgen run loadgen/scenarios/scenario-a-n25-verify-on.toml --results $OUT --name h$i > $OUT/h$i.log 2>&1
  python3 -c "
import json;d=json.load(open('$OUT/h$i/run.json'));f=d['figures'];print('h$i', f['completeness'], f['in_order_share'], f['latency_p50_ms'], f['time_to_all_p99_ms'], round(f['cpu_pct_per_node_mean'],3), sum(n['stats_delta'].get('node.pull.rounds_superseded',0) for n in d['nodes']), [ (n['name'][:6], n['blocks_received_measured'], n['blocks_delivered_in_order_measured']) for n in d['nodes'] if n['blocks_delivered_in_order_measured']<200])"
done
