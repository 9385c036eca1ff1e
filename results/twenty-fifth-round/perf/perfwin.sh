#!/usr/bin/env bash
# perfwin.sh SCENARIO NAME BIN : system-wide perf over 5 s inside the injection window (from 6 s
# after convergence, past loadgen's 5 s quiet window), then the run's headline figures.
#   p20/f20:     perfwin.sh loadgen/scenarios/scenario-a-n25-verify-on.toml p20 /tmp/perf/gnpush
#   p200b/h200b: perfwin.sh results/twenty-second-round/r200.toml p200b /tmp/perf/gnpush
set -u
cd /work/main
SC=$1; N=$2; BIN=$3; OUT=/tmp/perf/out; mkdir -p $OUT
/tmp/bins/lg-head run $SC --node-bin $BIN --results $OUT --name $N > $OUT/$N.log 2>&1 &
L=$!
for i in $(seq 1 600); do grep -q "converged after" $OUT/$N.log && break; sleep 0.1; done
sleep 6; perf record -a -F 1999 -o $OUT/$N.data -- sleep 5 > /dev/null 2>&1
wait $L
python3 -c "
import json;d=json.load(open('$OUT/$N/run.json'));f=d['figures']
print('$N',*[f'{k}={f.get(k)}' for k in ('completeness','latency_p50_ms','latency_via_push_p50_ms','cpu_pct_per_node_mean')])"
