#!/usr/bin/env bash
i=$1
start=$(date +%s.%N)
if /tmp/lc/gossip_lifecycle3 -q > /tmp/lc/run3-$i.log 2>&1; then r=ok; else r=FAILED; fi
end=$(date +%s.%N)
echo "$i $r $(echo "$end - $start" | bc) $(cut -d' ' -f1 /proc/loadavg)"
