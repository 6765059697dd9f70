#!/usr/bin/env bash
# Runs the official server conformance suite (@durable-streams/server-conformance-tests,
# pinned by package-lock.json) against dstest-server. Needs Go, Node and npm.
#   dsclient/dstest/testdata/conformance/run.sh [vitest arguments]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

cd "$here"
# `npm install --no-save` installs what the committed lockfile pins without rewriting it.
npm install --no-save --no-audit --no-fund --loglevel=error

(cd "$root" && go build -o "$tmp/dstest-server" ./dsclient/dstest/cmd/dstest-server)
long_poll_ms=2000
"$tmp/dstest-server" -addr 127.0.0.1:0 -long-poll-timeout "${long_poll_ms}ms" -quiet >"$tmp/url" &
pid=$!
for _ in $(seq 100); do
  [ -s "$tmp/url" ] && break
  sleep 0.1
done
[ -s "$tmp/url" ] || { echo "dstest-server did not start" >&2; exit 1; }

DSTEST_URL=$(head -n1 "$tmp/url") DSTEST_LONG_POLL_MS=$long_poll_ms npx vitest run "$@" | tee "$tmp/out"
# The whole suite (no arguments narrowing it) must run every case: none skipped, none failed.
if [ $# -eq 0 ]; then
  summary=$(sed 's/\x1b\[[0-9;]*m//g' "$tmp/out" | grep -E '^ *Tests ' | tail -n1)
  echo "summary: $summary"
  if ! echo "$summary" | grep -Eq '^ *Tests +[0-9]+ passed \([0-9]+\)$'; then
    echo "the server conformance suite did not pass every case (skipped or failed ones above)" >&2
    exit 1
  fi
fi
