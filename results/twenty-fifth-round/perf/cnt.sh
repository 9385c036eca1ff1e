#!/usr/bin/env bash
# cnt.sh NAME SCENARIO : count ECDSA verifies over 5 s of injection (after 6 s from convergence)
set -u
cd /work/main
N=$1; SC=$2; OUT=/tmp/perf/out; mkdir -p $OUT
/tmp/bins/lg-head run $SC --node-bin /tmp/perf/gnhead --results $OUT --name $N > $OUT/$N.log 2>&1 &
L=$!
for i in $(seq 1 600); do grep -q "converged after" $OUT/$N.log && break; sleep 0.1; done
sleep 1; perf stat -a -e probe_gnhead:ecv -x, -- sleep 4 2>&1 | tail -1
sleep 6; perf stat -a -e probe_gnhead:ecv -x, -- sleep 5 2>&1 | tail -1
wait $L
