#!/usr/bin/env bash
# sample RssAnon/RssFile of gossip-node processes every 20 s
while true; do
  for p in $(pgrep -f "gossip-node-seenttl|gossip-node "); do
    printf "%s %s %s\n" "$(date +%s)" "$p" "$(grep -E 'RssAnon|RssFile|RssShmem' /proc/$p/status 2>/dev/null | awk '{printf "%s%s ", $1, $2}')"
  done
  sleep 20
done
