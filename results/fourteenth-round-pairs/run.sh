#!/usr/bin/env bash
# Interleaved pairs, scenario A at N = 25: before (0ac739f) and after (split), alternating order.
set -u
cd /work/split
LG=./target/release/loadgen
OLD=/work/before/target/release/gossip-node
NEW=/work/split/target/release/gossip-node
OUT=/tmp/pairs/results
mkdir -p $OUT
for i in 1 2 3; do
  if [ $((i % 2)) -eq 1 ]; then order="old new"; else order="new old"; fi
  for which in $order; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    $LG run loadgen/scenarios/scenario-a-n25-verify-on.toml --node-bin $bin --results $OUT --name split-$which-$i > $OUT/split-$which-$i.log 2>&1
    echo "$(date +%T) $which-$i rc=$?"
  done
done
