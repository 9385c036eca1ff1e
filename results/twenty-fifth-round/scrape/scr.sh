#!/usr/bin/env bash
# scr.sh BIN NAME: node CPU per /metrics scrape (1,000 scrapes, new connection each, like loadgen)
set -u
cd /work/main
BIN=$1; N=$2
/tmp/bins/lg-head run /tmp/scr/n2.toml --node-bin $BIN --results /tmp/scr/out --name $N > /tmp/scr/$N.log 2>&1 &
L=$!
for i in $(seq 1 600); do grep -q "blocks due" /tmp/scr/$N.log && break; sleep 0.1; done
sleep 3
P=$(pgrep -x $(basename $BIN | cut -c1-15) | tail -1)
PORTS=$(ss -ltnpH | grep "pid=$P," | awk '{print $4}' | sed 's/.*://')
for port in $PORTS; do curl -s -m1 http://127.0.0.1:$port/metrics | grep -q gossip_engine && OP=$port; done
cpu() { awk '{s+=$1} END {print s}' /proc/$P/task/*/schedstat; }
c0=$(cpu)
python3 - $OP <<'PY'
import sys,http.client
for i in range(1000):
    c=http.client.HTTPConnection('127.0.0.1',int(sys.argv[1])); c.request('GET','/metrics'); r=c.getresponse(); r.read(); c.close()
PY
c1=$(cpu)
echo "$N port=$OP node cpu per scrape: $(( (c1-c0)/1000000 )) us"
kill $L 2>/dev/null; wait $L 2>/dev/null; pkill -x $(basename $BIN | cut -c1-15) 2>/dev/null
