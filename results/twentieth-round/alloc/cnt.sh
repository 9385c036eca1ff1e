#!/bin/bash
# count-only run: per-block call counts of a few functions on peer2 (gn-f66), 15 s inside injection
BIN=/tmp/gn-f66; NAME=$1; D=/tmp/alloc-prof/$NAME; mkdir -p $D; rm -rf /tmp/alloc-prof/runs/$NAME
cd /work/main
( /tmp/lg-f66 run /tmp/alloc-prof/s6.toml --node-bin $BIN --results /tmp/alloc-prof/runs --name $NAME 2>&1 | while IFS= read -r l; do echo "$(date +%s.%N) $l"; done > $D/lg.log ) &
for i in $(seq 1 900); do grep -q "converged after" $D/lg.log && break; sleep 0.05; done
PID=$(pgrep -af "^$BIN --config /tmp/loadgen-$NAME-[0-9]*/crypto/org1.example.com/peers/peer2.org1" | awk '{print $1}')
sleep 6.5
perf stat -e 'probe_gn:*' -p $PID -- sleep 15 2> $D/stat_cnt.txt
wait
