#!/usr/bin/env bash
# Writes the whole mmview work as one `git format-patch` series that applies
# with `git am` to a pristine Linux 6.12.118 tree: first the files we own
# (overlaid), then linux-patches/ in order.
#
# usage: export-series.sh [OUT_DIR]     default OUT_DIR: ./mmview-series
#        export-series.sh --check       export to a temporary folder, `git am` it
#                                       onto pristine 6.12.118 in a scratch work
#                                       tree and check the result is identical
#                                       to the assembled tree
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

check=0 out=${1:-mmview-series}
[ "$out" = --check ] && { check=1; out=$(mktemp -d); trap 'rm -rf "$out"' EXIT; }

head=$("$MMVIEW_REPO/scripts/assemble-tree.sh" --no-checkout)
mkdir -p "$out"
rm -f "$out"/*.patch
git -C "$SRC_DIR" format-patch -q --no-signature -o "$out" pristine.."$head"
n=$(ls "$out"/*.patch | wc -l)
if [ $check = 0 ]; then
	log "wrote $n patches to $out; apply with: cd linux-6.12.118 && git am $out/*.patch"
	exit 0
fi

wt=$MMVIEW_CACHE/am-check
if ! [ -d "$wt" ]; then
	git -C "$SRC_DIR" worktree prune
	git -C "$SRC_DIR" worktree add -q --detach "$wt" pristine
fi
git -C "$wt" am --abort >/dev/null 2>&1 || true
git -C "$wt" checkout -q -f --detach pristine
git -C "$wt" clean -q -fdx
if ! git -C "$wt" -c user.name=check -c user.email=check@localhost am -q "$out"/*.patch; then
	git -C "$wt" am --abort >/dev/null 2>&1 || true
	die "the exported series does not apply with git am to pristine $KVER"
fi
want=$(git -C "$SRC_DIR" rev-parse "$head^{tree}")
got=$(git -C "$wt" rev-parse "HEAD^{tree}")
[ "$want" = "$got" ] || die "git am of the exported series gives tree $got, the assembled tree is $want"
log "the exported series ($n patches) applies with git am to pristine $KVER and gives the assembled tree"
