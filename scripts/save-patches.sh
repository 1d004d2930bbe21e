#!/usr/bin/env bash
# Developer workflow for edits to upstream files:
#   scripts/assemble-tree.sh            # tree at pristine + overlay + patches
#   cd ~/.cache/mmview/src/linux-6.12.118; edit; git commit (or rebase -i)
#   scripts/save-patches.sh             # writes those commits to linux-patches/
# The commits after the overlay commit become linux-patches/NNNN-*.patch; the
# old patch files are replaced. Files we own are edited in this repo, never
# in the tree: a commit that touches them is refused.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

export GIT_DIR=$SRC_DIR/.git
overlay=$(git rev-list --reverse pristine..HEAD | head -1)
[ -n "$overlay" ] || die "no overlay commit on top of pristine: run scripts/assemble-tree.sh first"
[ "$(git log -1 --format=%s "$overlay")" = "$(head -1 "$OVERLAY_MESSAGE")" ] ||
	die "the first commit after pristine is not the overlay commit"
[ -z "$(git -C "$SRC_DIR" status --porcelain --untracked-files=no)" ] ||
	die "uncommitted changes in $SRC_DIR: commit them first"
owned=$(git diff --name-only "$overlay" HEAD | while read -r f; do
	git cat-file -e "pristine:$f" 2>/dev/null || echo "$f"; done)
[ -z "$owned" ] || die "commits after the overlay touch files we own (edit them in the repo): $owned"

rm -f "$MMVIEW_REPO"/linux-patches/*.patch
git format-patch -q --no-signature --zero-commit -N -o "$MMVIEW_REPO/linux-patches" "$overlay"..HEAD
ls "$MMVIEW_REPO"/linux-patches/*.patch
