#!/usr/bin/env bash
# Interleaved: scenario A at N = 25, block authentication on (HEAD, orderer signatures verified),
# off (HEAD, skipBlockVerification), and the engine of 0ac739f (no authentication), alternating.
set -u
cd /work/main
LG=./target/release/loadgen
OLD=/work/before/target/release/gossip-node
NEW=/work/main/target/release/gossip-node
OUT=/tmp/pairs/auth
mkdir -p $OUT
run() { # name bin scenario
  $LG run loadgen/scenarios/$3.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1
  echo "$(date +%T) $1 rc=$?"
}
for i in 1 2; do
  if [ $i -eq 1 ]; then
    run auth-on-$i $NEW scenario-a-n25-verify-on; run auth-off-$i $NEW scenario-a-n25-verify-off; run old-$i $OLD scenario-a-n25-verify-on
  else
    run old-$i $OLD scenario-a-n25-verify-on; run auth-off-$i $NEW scenario-a-n25-verify-off; run auth-on-$i $NEW scenario-a-n25-verify-on
  fi
done
