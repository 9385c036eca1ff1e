#!/usr/bin/env bash
# run.sh NAME BIN : scenario A N=25, perf -a over 10 s of injection
set -u
cd /work/main
N=$1; BIN=$2; OUT=/tmp/perf/out; mkdir -p $OUT
/tmp/bins/lg-head run results/twenty-second-round/r200.toml --node-bin $BIN --results $OUT --name $N > $OUT/$N.log 2>&1 &
L=$!
for i in $(seq 1 600); do grep -q "converged after" $OUT/$N.log && break; sleep 0.1; done
sleep 6; perf record -a -F 1999 -o $OUT/$N.data -- sleep 5 > /dev/null 2>&1
wait $L
python3 -c "
import json;d=json.load(open('$OUT/$N/run.json'));f=d['figures']
print('$N',*[f'{k}={f.get(k)}' for k in ('completeness','latency_p50_ms','latency_via_push_p50_ms','cpu_pct_per_node_mean')])"
