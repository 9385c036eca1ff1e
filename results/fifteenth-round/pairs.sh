#!/usr/bin/env bash
# Scenario A at N = 25, verification on, interleaved: HEAD ("new": state transfer, durable redb
# ledger, identity pull), 2689540 ("st": state transfer, no ledger, no identity pull) and 6c62a22
# ("old": pull and block authentication only). loadgen of HEAD for every run.
set -u
cd /work/main
LG=./target/release/loadgen
NEW=/work/main/target/release/gossip-node
ST=/tmp/gossip-node-2689540
OLD=/tmp/gossip-node-6c62a22
OUT=/tmp/pairs/fifteenth-b
mkdir -p $OUT
run() { $LG run loadgen/scenarios/$3.toml --node-bin $2 --results $OUT --name $1 > $OUT/$1.log 2>&1; echo "$(date +%T) $1 rc=$?"; }
run new-1 $NEW scenario-a-n25-verify-on
run old-1 $OLD scenario-a-n25-verify-on
run st-1 $ST scenario-a-n25-verify-on
run st-2 $ST scenario-a-n25-verify-on
run old-2 $OLD scenario-a-n25-verify-on
run new-2 $NEW scenario-a-n25-verify-on
run new-3 $NEW scenario-a-n25-verify-on
run old-3 $OLD scenario-a-n25-verify-on
