#!/usr/bin/env bash
# Issue 19 after state transfer, the durable ledger and identity pull: scenario A with orderer-signed
# blocks and verification on at N = 10, 25 and 50 (HEAD), N = 25 interleaved with the engine of
# 6c62a22 (pull and block authentication, no ledger, no state transfer, no identity pull), and
# N = 25 with verification off (the CPU cost of authentication). loadgen of HEAD for every run.
set -u
cd /work/main
LG=./target/release/loadgen
OLD=/work/before/target/release/gossip-node
NEW=/work/main/target/release/gossip-node
OUT=/tmp/pairs/fifteenth
mkdir -p $OUT
run() { $LG run loadgen/scenarios/$3.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1; echo "$(date +%T) $1 rc=$?"; }
run new-n25-1 $NEW scenario-a-n25-verify-on
run old-n25-1 $OLD scenario-a-n25-verify-on
run old-n25-2 $OLD scenario-a-n25-verify-on
run new-n25-2 $NEW scenario-a-n25-verify-on
run new-n25-off $NEW scenario-a-n25-verify-off
run new-n10 $NEW scenario-a-n10-verify-on
run new-n50 $NEW scenario-a-n50-verify-on
