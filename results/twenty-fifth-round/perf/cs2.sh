#!/usr/bin/env bash
# cs2.sh NAME BIN: per-thread context switches of one node (node 5) over 10 s of injection
set -u
cd /work/main
N=$1; BIN=$2; OUT=/tmp/perf/out; mkdir -p $OUT
/tmp/bins/lg-head run loadgen/scenarios/scenario-a-n25-verify-on.toml --node-bin $BIN --results $OUT --name $N > $OUT/$N.log 2>&1 &
L=$!
for i in $(seq 1 600); do grep -q "converged after" $OUT/$N.log && break; sleep 0.1; done
P=$(pgrep -x $(basename $BIN) | sed -n 5p)
snap() { for t in /proc/$P/task/*; do echo "$(basename $t):$(cat $t/comm) $(awk '/^voluntary/{v=$2} /^nonvoluntary/{n=$2} END {print v, n}' $t/status) $(awk '{print $14+$15}' $t/stat)"; done; }
snap > $OUT/$N.t0; sleep 10; snap > $OUT/$N.t1
wait $L
join $OUT/$N.t0 $OUT/$N.t1 | awk '{print $1, "vol", $5-$2, "invol", $6-$3, "ticks", $7-$4}'
