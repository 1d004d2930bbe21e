#!/usr/bin/env bash
# Assembles the mmview kernel tree from the pristine 6.12 source:
#   1. one commit adds the files we own, overlaid at their kernel paths
#      (every tracked or new file of this repo under the kernel's top-level
#      folders: arch/ include/ mm/ rust/ kernel/ Documentation/ ...);
#   2. one commit per patch in linux-patches/, in order.
# The commits are built on a temporary index, without touching the work tree;
# the tree is then checked out at the result, which rewrites only the files
# that changed, so an incremental kernel build stays incremental.
#
# usage: assemble-tree.sh [--no-checkout]   prints the resulting commit id
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

checkout=1
[ "${1:-}" = --no-checkout ] && checkout=0

"$MMVIEW_REPO/scripts/fetch-kernel.sh"

export GIT_DIR=$SRC_DIR/.git
index=$(mktemp "$MMVIEW_CACHE/index.XXXXXX")
tmp=$(mktemp -d)
trap 'rm -rf "$index" "$tmp"' EXIT
export GIT_INDEX_FILE=$index
git read-tree pristine

# Fixed identity and dates: the same inputs give the same commit ids.
export GIT_COMMITTER_NAME="mmview developers" GIT_COMMITTER_EMAIL="mmview@localhost"
export GIT_COMMITTER_DATE="2026-01-01T00:00:00Z"

# 1. The overlay.
mapfile -t files < <(git -C "$MMVIEW_REPO" --git-dir="$MMVIEW_REPO/.git" ls-files \
	--cached --others --exclude-standard -- $OVERLAY_DIRS | sort -u)
for f in "${files[@]}"; do
	[ -f "$MMVIEW_REPO/$f" ] || continue # deleted but not yet committed
	if git cat-file -e "pristine:$f" 2>/dev/null; then
		die "$f exists in the pristine tree: edits to upstream files belong in linux-patches/"
	fi
	mode=100644
	[ -x "$MMVIEW_REPO/$f" ] && mode=100755
	blob=$(git hash-object -w -- "$MMVIEW_REPO/$f")
	git update-index --add --cacheinfo "$mode,$blob,$f"
done
head=$(git rev-parse pristine)
head=$(GIT_AUTHOR_NAME="$GIT_COMMITTER_NAME" GIT_AUTHOR_EMAIL="$GIT_COMMITTER_EMAIL" \
	GIT_AUTHOR_DATE="$GIT_COMMITTER_DATE" \
	git commit-tree "$(git write-tree)" -p "$head" -F "$OVERLAY_MESSAGE")

# 2. The patches.
for p in "$MMVIEW_REPO"/linux-patches/*.patch; do
	[ -e "$p" ] || continue
	name=$(basename "$p")
	git apply --cached --whitespace=nowarn "$p" 2>"$tmp/err" ||
		die "patch $name does not apply:
$(cat "$tmp/err")"
	git mailinfo "$tmp/msg" "$tmp/patch" <"$p" >"$tmp/info"
	subject=$(sed -n 's/^Subject: //p' "$tmp/info")
	{ printf '%s\n\n' "$subject"; cat "$tmp/msg"; } >"$tmp/message"
	head=$(GIT_AUTHOR_NAME=$(sed -n 's/^Author: //p' "$tmp/info") \
		GIT_AUTHOR_EMAIL=$(sed -n 's/^Email: //p' "$tmp/info") \
		GIT_AUTHOR_DATE=$(sed -n 's/^Date: //p' "$tmp/info") \
		git commit-tree "$(git write-tree)" -p "$head" -F "$tmp/message")
done

if [ $checkout = 1 ]; then
	unset GIT_INDEX_FILE
	if [ "$(git -C "$SRC_DIR" rev-parse HEAD)" != "$head" ]; then
		git -C "$SRC_DIR" checkout -q -f --detach "$head"
	fi
	# Anything left by hand in the tree would silently enter the build.
	if [ -n "$(git -C "$SRC_DIR" status --porcelain --untracked-files=normal | head -1)" ]; then
		git -C "$SRC_DIR" status --short | head >&2
		die "the kernel tree $SRC_DIR has local changes (above); commit them as patches or reset them"
	fi
fi
echo "$head"
