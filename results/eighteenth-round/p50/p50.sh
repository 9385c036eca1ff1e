#!/usr/bin/env bash
set -u
cd /work/main
LG=/tmp/loadgen-5aed6aa
OUT=/tmp/r100/p50
mkdir -p $OUT
run() { # name bin
  $LG run loadgen/scenarios/scenario-a-n25-verify-on.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$? load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "
import json;d=json.load(open('$OUT/$1/run.json'));f=d['figures']
print(*[f'{k}={f.get(k)}' for k in ('completeness','in_order_share','latency_p50_ms','latency_via_push_p50_ms','time_to_all_p99_ms','cpu_pct_per_node_mean')])
" 2>/dev/null)"
}
for r in 1 2 3 4; do
  run push-$r /tmp/gossip-node-72610c8
  run head-$r /tmp/gossip-node-5aed6aa
done
