#!/usr/bin/env bash
# Issue 19: scenario A with orderer-signed blocks and verification on, at N = 10, 25, 50 (HEAD), and
# N = 25 interleaved with the engine of 0ac739f (push only, structure-only block checks).
set -u
cd /work/main
LG=./target/release/loadgen
OLD=/work/before/target/release/gossip-node
NEW=/work/main/target/release/gossip-node
OUT=/tmp/pairs/final
mkdir -p $OUT
run() { $LG run loadgen/scenarios/$3.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1; echo "$(date +%T) $1 rc=$?"; }
run head-n25-1 $NEW scenario-a-n25-verify-on
run old-n25-1 $OLD scenario-a-n25-verify-on
run old-n25-2 $OLD scenario-a-n25-verify-on
run head-n25-2 $NEW scenario-a-n25-verify-on
run head-n10 $NEW scenario-a-n10-verify-on
run head-n50 $NEW scenario-a-n50-verify-on
