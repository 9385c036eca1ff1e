#!/usr/bin/env bash
# pairsX.sh OUTDIR ROUNDS name=bin@scenario.toml ... : interleaved runs
set -u
OUT=$1; R=$2; shift 2; mkdir -p $OUT
LG=${LG:-/tmp/phase/lg}
for r in $(seq 1 $R); do
  for spec in "$@"; do
    name=${spec%%=*}; rest=${spec#*=}; bin=${rest%@*}; sc=${rest#*@}
    $LG run $sc --node-bin $bin --results $OUT --name $name-$r > $OUT/$name-$r.log 2>&1
    echo "$(date +%T) $name-$r load=$(cut -d' ' -f1 /proc/loadavg) $(python3 -c "
import json;d=json.load(open('$OUT/$name-$r/run.json'));f=d['figures']
print(*[f'{k}={f.get(k)}' for k in ('completeness','latency_p50_ms','latency_via_push_p50_ms','time_to_all_p99_ms','cpu_pct_per_node_mean')])
" 2>/dev/null)"
  done
done
