#!/usr/bin/env bash
set -u
OUT=/tmp/phase/out/S; mkdir -p $OUT
for r in 1 2 3 4; do
  for v in base noscr s10; do
    sc=/tmp/phase/sa.toml; envs=""
    [ $v = noscr ] && envs="LG_NO_SCRAPE=1"
    [ $v = s10 ] && sc=/tmp/phase/s10.toml
    env $envs /tmp/phase/lgx run $sc --node-bin /tmp/phase/gnh2 --results $OUT --name $v-$r > $OUT/$v-$r.log 2>&1
    echo "$(date +%T) $v-$r load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "
import json;f=json.load(open('$OUT/$v-$r/run.json'))['figures']
print(*[f'{k}={f.get(k):.2f}' for k in ('completeness','latency_p50_ms','latency_p90_ms','latency_via_push_p99_ms','cpu_pct_per_node_mean')])")"
  done
done
