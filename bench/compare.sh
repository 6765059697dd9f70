#!/usr/bin/env bash
# compare.sh: run a benchmark suite at two revisions side by side, in one invocation.
#
#   bench/compare.sh [-b BASE] [-c CURRENT] [-r ROUNDS] SUITE [-- SUITE FLAGS...]
#
#   SUITE    core (Sluice msg/s and x limit, both work modes) or pipeline (the catch-up
#            throughput part on the in-process server: the pipeline's msg/s and x bare)
#   -b BASE  the base revision (default 5cdf4a8, the last commit before the reshaping of
#            issue 10)
#   -c REV   the current revision (default: the working tree as it is, uncommitted changes
#            included)
#   -r N     rounds (default 5); each runs the base binary and the current binary once
#            (-rounds 1), in an order that alternates from round to round
#
# The base revision is checked out in a git worktree under /tmp, its suite built from there
# (bench/ with its replace of the library at that revision), the current one from this tree;
# both binaries get the suite's defaults and the flags after "--", each only the flags its -h
# lists. It prints every round's figures, then the medians and the median of the per-round
# ratios current / base. The worktrees and binaries are removed at the end.
#
# Examples:
#   bench/compare.sh core                              # 1,000,000 messages, 5 rounds
#   bench/compare.sh -r 3 pipeline -- -n 1000000
#   bench/compare.sh -r 1 core -- -n 100000            # a smoke run
set -euo pipefail

base=5cdf4a8
current=""
rounds=5
usage() {
	sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while getopts "b:c:r:h" opt; do
	case $opt in
	b) base=$OPTARG ;;
	c) current=$OPTARG ;;
	r) rounds=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[[ $# -ge 1 ]] || usage
suite=$1
shift
case $suite in
core | pipeline) ;;
*)
	echo "compare.sh: unknown suite '$suite' (known: core, pipeline)" >&2
	exit 2
	;;
esac
if [[ $# -gt 0 ]]; then
	[[ $1 == "--" ]] || usage
	shift
fi
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: -r must be a positive number" >&2; exit 2; }

root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
base_sha=$(git -C "$root" rev-parse --verify "$base^{commit}")
tmp=$(mktemp -d /tmp/sluice-compare.XXXXXX)
worktrees=()
cleanup() {
	for w in "${worktrees[@]}"; do
		git -C "$root" worktree remove --force "$w" >/dev/null 2>&1 || true
	done
	git -C "$root" worktree prune >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# build REV_SHA OUT: builds the suite at a revision (a worktree under $tmp) into OUT.
build() {
	local sha=$1 out=$2 dir=$tmp/src-${1:0:12}
	git -C "$root" worktree add --detach --quiet "$dir" "$sha"
	worktrees+=("$dir")
	(cd "$dir/bench" && go build -o "$out" "./$suite")
}

echo "building $suite at base $base ($base_sha)" >&2
build "$base_sha" "$tmp/base"
if [[ -n $current ]]; then
	current_sha=$(git -C "$root" rev-parse --verify "$current^{commit}")
	current_name="$current ($current_sha)"
	echo "building $suite at current $current_name" >&2
	build "$current_sha" "$tmp/current"
else
	current_name="working tree at $(git -C "$root" rev-parse --short HEAD)"
	[[ -z $(git -C "$root" status --porcelain --untracked-files=no) ]] || current_name+=" with uncommitted changes"
	echo "building $suite from the $current_name" >&2
	(cd "$root/bench" && go build -o "$tmp/current" "./$suite")
fi
(cd "$root/bench" && go build -o "$tmp/compare" ./compare)

"$tmp/compare" -suite "$suite" -base "$tmp/base" -current "$tmp/current" -rounds "$rounds" \
	-base-rev "$base ($base_sha)" -current-rev "$current_name" -- "$@"
