#!/usr/bin/env bash
set -u
cd /work/main
LG=/tmp/loadgen-791a75f; OUT=/tmp/p50v; mkdir -p $OUT
run() { # name scenario bin
  $LG run loadgen/scenarios/$2.toml --node-bin $3 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "
import json;d=json.load(open('$OUT/$1/run.json'));f=d['figures']
print(*[f'{k}={f.get(k)}' for k in ('completeness','latency_p50_ms','latency_via_push_p50_ms','time_to_all_p99_ms','cpu_pct_per_node_mean')])
" 2>/dev/null)"
}
for r in 1 2 3; do
  run push-$r scenario-a-n25-verify-on /tmp/gnpush
  run on-$r scenario-a-n25-verify-on /tmp/gnhead
  run off-$r scenario-a-n25-verify-off /tmp/gnhead
done
