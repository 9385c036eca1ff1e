#!/bin/bash
# usage: prof2.sh BIN NAME  -- idle stat (4 s, loadgen idle_s), injection stat (15 s), injection record (10 s, dwarf) + concurrent stat
BIN=$1; NAME=$2; D=/tmp/alloc-prof/$NAME; mkdir -p $D; rm -rf /tmp/alloc-prof/runs/$NAME; rm -f $D/times
G=$(basename $BIN | tr -d '-'); [ $G = gnf66 ] && GRP=probe_gn || GRP=probe_gnpush
EV="-e $GRP:${G}_mi_malloc_aligned -e $GRP:${G}_mi_zalloc_aligned -e $GRP:${G}_mi_realloc_aligned"
EV2="-e $GRP:${G}_verify_block -e $GRP:${G}_handle_data -e $GRP:${G}_block_event"
[ $G = gnf66 ] && EV2="$EV2 -e $GRP:${G}_payload_checks -e $GRP:${G}_commitloop_add"
cd /work/main
( /tmp/lg-f66 run /tmp/alloc-prof/s6.toml --node-bin $BIN --results /tmp/alloc-prof/runs --name $NAME 2>&1 | while IFS= read -r l; do echo "$(date +%s.%N) $l"; done > $D/lg.log ) &
LG=$!
for i in $(seq 1 900); do grep -q "converged after" $D/lg.log && break; sleep 0.05; done
PID=$(pgrep -af "^$BIN --config /tmp/loadgen-$NAME-[0-9]*/crypto/org1.example.com/peers/peer2.org1" | awk '{print $1}'); echo $PID > $D/pid; [ -n "$PID" ] || { echo nopid; exit 1; }
echo "stat-idle start $(date +%s.%N)" >> $D/times
perf stat $EV $EV2 -p $PID -- sleep 4 2> $D/stat_idle.txt
echo "stat-idle end $(date +%s.%N)" >> $D/times
sleep 2.5
echo "stat-inj start $(date +%s.%N)" >> $D/times
perf stat $EV $EV2 -p $PID -- sleep 15 2> $D/stat_inj.txt
echo "stat-inj end $(date +%s.%N)" >> $D/times
echo "rec start $(date +%s.%N)" >> $D/times
perf stat $EV $EV2 -p $PID -- sleep 11 2> $D/stat_rec.txt &
perf record $EV --call-graph dwarf,16384 -m 8192 -o $D/perf.data -p $PID -- sleep 10 2> $D/rec.log
echo "rec end $(date +%s.%N)" >> $D/times
wait
perf script -i $D/perf.data -F event,ip,sym --no-inline > $D/script_noinline.txt 2>/dev/null
