#!/usr/bin/env bash
set -u
cd /work/main
LG=/tmp/loadgen-59997df
OUT=${OUT:-/tmp/r100/out3}
mkdir -p $OUT
run() { # name scenario bin
  $LG run $2 --node-bin $3 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$? load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "
import json;d=json.load(open('$OUT/$1/run.json'));f=d['figures']
print(*[f'{k}={f.get(k)}' for k in ('completeness','in_order_share','latency_p50_ms','deliveries_via_pull','latency_via_pull_p50_ms','latency_via_pull_p99_ms','msgs_received_per_peer_per_block_upper','cpu_pct_per_node_mean')])
" 2>/dev/null)"
}
for r in $(seq 1 ${REPS:-3}); do
  for v in $VARIANTS; do run $v-$r /tmp/r100/$v.toml ${BIN:-/tmp/gossip-node-seenttl}; done
done
