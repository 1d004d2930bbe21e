#!/usr/bin/env bash
# Figure 6, the cost of mmview when unused: boots the same kernel built with
# CONFIG_MMVIEW=y (variant normal) and =n (variant off) into
# `mmview-bench --only unused`, which measures page faults, fork() and a
# system call, each normalised to a CPU-only loop in the same boot, and
# compares the kernels by the ratio of their normalised figures (1.0: no
# cost). The boots alternate (y, n, y, n, ...) so that a change in the
# host's load hits both; each kernel's figure is the median over its boots.
# Builds both kernels if needed (two builds).
#
#   results/unused-ARCH-VARIANT-DATE-rN.{log,csv,meta}   each boot
#   results/unused-ARCH-DATE.{csv,md,svg}                the comparison
#
# usage: scripts/bench/unused-cost.sh [--no-build] [--publish] [--reps N] [--rounds R] [ARCH]
#   ARCH        x86_64 (default) or arm64
#   --publish   also copy the comparison to docs/bench/unused-ARCH.{csv,md,svg}
#   --rounds R  boots of each kernel (default 5)
#   --reps N    passed to mmview-bench (a full run makes 10 N repetitions)
#   --no-build  use the kernels already built
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

build=1 publish=0 reps= rounds=5 arch=x86_64
command_line="scripts/bench/unused-cost.sh${*:+ $*}"
while [ $# -gt 0 ]; do
	case $1 in
	--no-build) build=0 ;;
	--publish) publish=1 ;;
	--reps) reps=${2:?--reps needs a number}; shift ;;
	--rounds) rounds=${2:?--rounds needs a number}; shift ;;
	x86_64 | arm64) arch=$1 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done

results=$MMVIEW_REPO/results
mkdir -p "$results"
date=$(date -u +%Y-%m-%d-%H%M)
args=--only,unused
[ -n "$reps" ] && args+=",--reps,$reps"
report=$MMVIEW_REPO/scripts/bench/report.py

if [ $build = 1 ]; then
	"$MMVIEW_REPO/scripts/setup.sh"
	"$MMVIEW_REPO/scripts/assemble-tree.sh" >/dev/null
fi
"$MMVIEW_REPO/scripts/build-userspace.sh" "$arch" >/dev/null

if [ $build = 1 ]; then
	for variant in normal off; do
		"$MMVIEW_REPO/scripts/build-kernel.sh" "$arch" "$variant" --no-assemble >/dev/null
	done
fi

status=0 on=() off=()
for round in $(seq 1 "$rounds"); do
	for variant in normal off; do
		base=$results/unused-$arch-$variant-$date-r$round
		log "$arch/$variant, round $round of $rounds (console: $base.log)"
		"$MMVIEW_REPO/scripts/qemu/boot.sh" "$arch" "$variant" --run bench --args "$args" \
			--timeout 600 --quiet --log "$base.log" || status=1
		"$MMVIEW_REPO/scripts/qemu/analyse.py" "$base.log" "$arch/$variant/unused" >/dev/null || {
			"$MMVIEW_REPO/scripts/qemu/analyse.py" "$base.log" "$arch/$variant/unused"
			status=1
		}
		if python3 "$report" extract "$base.log" "$base.csv" --meta "$base.meta" \
			--set "date=$(date -u '+%Y-%m-%d %H:%M UTC')" --set "command=$command_line" \
			--set "variant=$variant" >/dev/null; then
			if [ $variant = normal ]; then on+=("$base.csv"); else off+=("$base.csv"); fi
		else
			status=1
		fi
	done
done

out=$results/unused-$arch-$date
if [ ${#on[@]} -gt 0 ] && [ ${#off[@]} -gt 0 ]; then
	python3 "$report" compare "$out.csv" --on "${on[@]}" --off "${off[@]}" >"$out.md"
	cp "${on[0]%.csv}.meta" "$out.meta"
	python3 "$report" plot-unused "$out.svg" "$out.csv" >/dev/null
	echo
	echo "CONFIG_MMVIEW=y vs =n on $arch:"
	echo
	cat "$out.md"
	echo
	echo "comparison: $out.csv ($out.md)"
	echo "plot:       $out.svg"
	if [ $publish = 1 ]; then
		docs=$MMVIEW_REPO/docs/bench
		mkdir -p "$docs"
		for ext in csv meta svg; do cp "$out.$ext" "$docs/unused-$arch.$ext"; done
		{
			echo "Produced by \`$command_line\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
			echo
			cat "$out.md"
		} >"$docs/unused-$arch.md"
		echo "published to $docs/unused-$arch.{csv,md,svg}"
	fi
fi
exit $status
