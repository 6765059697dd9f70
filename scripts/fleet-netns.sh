#!/usr/bin/env bash
# fleet-netns.sh: run the multi-host test of the subscription worker (internal/fleettest) and
# print what happened.
#
# The test makes its own hosts with network namespaces on this machine (a bridge, one veth per
# host, a 10.77.N.0/24 no other interface uses): a Durable Streams server on one host, three
# worker processes on three others, PostgreSQL (127.0.0.1:5432 of this machine) reached
# through a forwarder on the bridge. It kills one worker (SIGKILL), stops another past its
# lease (SIGSTOP, then SIGCONT), restarts the killed one, and checks that every appended event
# is in the table once and every subscription's cursors are at the streams' tails.
#
# Usage: sudo scripts/fleet-netns.sh [-s dstest|refserver|all] [-r] [-l]
#   -s  the server: dstest (dstest-server, built by the test), refserver (the reference
#       server, Node), or all (default)
#   -r  build with the race detector
#   -l  print the test's whole log, not only what happened
#
# Needs root, iproute2 (ip), Go, PostgreSQL on 127.0.0.1:5432 (database test, trust auth) and,
# for the reference server, Node and npm. Whatever happens (a failure, Ctrl-C, a kill of the
# test), the namespaces and links of runs whose process is gone are removed on the way out,
# and again at the start of the next run.
set -euo pipefail
cd "$(dirname "$0")/.."

server=all race="" full=0
while getopts "s:rlh" opt; do
  case $opt in
    s) server=$OPTARG ;;
    r) race=-race ;;
    l) full=1 ;;
    *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
  esac
done
case $server in
  all) run='^TestFleetNetns$' ;;
  dstest|refserver) run="^TestFleetNetns\$/^$server\$" ;;
  *) echo "fleet-netns: -s: want dstest, refserver or all, got '$server'" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "fleet-netns: network namespaces need root: run it with sudo" >&2; exit 2; }
command -v ip >/dev/null || { echo "fleet-netns: the ip command is missing: apt-get install iproute2" >&2; exit 2; }
command -v go >/dev/null || { echo "fleet-netns: the go command is missing" >&2; exit 2; }

work=$(mktemp -d /tmp/sluice-fleet.XXXXXX)
testpid=""

# stale removes the namespaces (killing what runs in them) and the links made by processes
# that are gone: their names carry the pid of the process that made them.
stale() {
  local ns pid name p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^slfleet-' || true); do
    pid=$(cut -d- -f2 <<<"$ns")
    [ -d "/proc/$pid" ] && continue
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null && echo "fleet-netns: removed namespace $ns"
  done
  for p in /sys/class/net/sf[bvp]*-*; do
    [ -e "$p" ] || continue
    name=$(basename "$p")
    [[ $name =~ ^sf[bvp][0-9]+-([0-9]+)$ ]] || continue
    [ -d "/proc/${BASH_REMATCH[1]}" ] && continue
    ip link del "$name" 2>/dev/null && echo "fleet-netns: removed link $name"
  done
  return 0
}

finish() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$testpid" ] && kill -0 "$testpid" 2>/dev/null; then
    kill -TERM "$testpid" 2>/dev/null || true
    wait "$testpid" 2>/dev/null || true
  fi
  stale
  rm -f "$work/fleettest.test"
  echo "fleet-netns: the whole log is $work/test.log"
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT TERM

stale
echo "fleet-netns: building the test ($server${race:+, race detector})"
go test -c $race -o "$work/fleettest.test" ./internal/fleettest/

# The test binary runs from its package's directory, as go test runs it, in its own process
# so that a stop here ends it (its worker and server processes die with it).
(cd internal/fleettest && SLUICE_REQUIRE_NETNS=1 exec "$work/fleettest.test" -test.run "$run" -test.v -test.count 1 -test.timeout 10m) >"$work/test.log" 2>&1 &
testpid=$!
if [ "$full" = 1 ]; then
  tail -n +1 -f --pid "$testpid" "$work/test.log"
else
  tail -n +1 -f --pid "$testpid" "$work/test.log" | grep --line-buffered -v -E '^=== (RUN|PAUSE|CONT)' |
    sed -u -E 's/^ *[a-z_]+\.go:[0-9]+: //'
fi
set +e
wait "$testpid"
status=$?
set -e
testpid=""
if [ "$status" = 0 ]; then
  echo "fleet-netns: PASS"
else
  echo "fleet-netns: FAIL (exit $status)"
fi
exit "$status"
