#!/usr/bin/env bash
# The benchmark command: builds what is missing (kernel, normal variant, and
# the guest userspace), boots each arch under QEMU (TCG) into mmview-bench,
# and brings the results back to the host:
#
#   results/bench-ARCH-DATE.log    the console
#   results/bench-ARCH-DATE.csv    the result rows (columns: see docs/bench/README.md)
#   results/bench-ARCH-DATE.meta   machine, kernel, command, date (KEY=VALUE)
#   results/bench-DATE.svg         the plot (all arches of the run)
#   results/bench-DATE.md          the tables
#
# Each run is judged like a test run (KTAP complete, every figure ok, no
# kernel splat); the exit status is 0 only if every arch passed. Figures whose
# mmview operations the kernel does not provide yet are reported as n/a.
#
# usage: scripts/bench/run.sh [--smoke] [--no-build] [--publish] [--mem SIZE] [--reps N] [ARCH...]
#   ARCH        x86_64 and/or arm64 (default: both)
#   --publish   also copy the results to docs/bench/ (bench-ARCH.{csv,meta},
#               bench.svg, results.md), the figures that docs/bench/README.md shows
#   --smoke     tiny sizes, a few seconds per arch (files are named bench-smoke-*)
#   --no-build  use the kernels already built (no setup.sh, no tree assembly,
#               no kernel build); the userspace is still rebuilt
#   --mem SIZE  guest memory (default 2G: figure 1 goes up to S = 1024 MiB)
#   --reps N    repetitions per measurement (default: the program's, 11)
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

smoke=0 build=1 publish=0 mem=2G reps= arches=()
command_line="scripts/bench/run.sh${*:+ $*}"
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) smoke=1 ;;
	--no-build) build=0 ;;
	--publish) publish=1 ;;
	--mem) mem=${2:?--mem needs a size}; shift ;;
	--reps) reps=${2:?--reps needs a number}; shift ;;
	x86_64 | arm64) arches+=("$1") ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (see --help)" ;;
	esac
	shift
done
[ ${#arches[@]} -gt 0 ] || arches=(x86_64 arm64)

results=$MMVIEW_REPO/results
mkdir -p "$results"
date=$(date -u +%Y-%m-%d-%H%M)
tag=bench timeout=1800 guest_args=()
[ $smoke = 1 ] && tag=bench-smoke timeout=300 guest_args+=(--smoke)
[ -n "$reps" ] && guest_args+=(--reps "$reps")
args=$(IFS=,; echo "${guest_args[*]}")
report=$MMVIEW_REPO/scripts/bench/report.py

if [ $build = 1 ]; then
	"$MMVIEW_REPO/scripts/setup.sh"
	"$MMVIEW_REPO/scripts/assemble-tree.sh" >/dev/null
fi

status=0 csvs=() summary=()
for arch in "${arches[@]}"; do
	"$MMVIEW_REPO/scripts/build-userspace.sh" "$arch" >/dev/null
	if [ $build = 1 ]; then
		"$MMVIEW_REPO/scripts/build-kernel.sh" "$arch" normal --no-assemble >/dev/null
	fi
	base=$results/$tag-$arch-$date
	log "$arch: running the benchmark ($tag, guest memory $mem; console: $base.log)"
	start=$SECONDS
	boot_status=0
	"$MMVIEW_REPO/scripts/qemu/boot.sh" "$arch" normal --run bench ${args:+--args "$args"} \
		--mem "$mem" --timeout "$timeout" --quiet --log "$base.log" || boot_status=$?
	seconds=$((SECONDS - start))
	log "$arch: the guest ran for $seconds s"
	if ! verdict=$("$MMVIEW_REPO/scripts/qemu/analyse.py" "$base.log" "$arch/normal/$tag"); then
		status=1
	fi
	printf '%s\n' "$verdict"
	summary+=("$(tail -n 1 <<<"$verdict") (${seconds} s)")
	[ "$boot_status" = 0 ] || status=1
	if python3 "$report" extract "$base.log" "$base.csv" --meta "$base.meta" \
		--set "date=$(date -u '+%Y-%m-%d %H:%M UTC')" --set "command=$command_line" \
		--set "guest_mem=$mem" --set "run_seconds=$seconds" \
		--set "qemu=$(qemu-system-x86_64 --version | head -n 1)" >/dev/null; then
		csvs+=("$base.csv")
	else
		status=1
	fi
done

if [ ${#csvs[@]} -gt 0 ]; then
	python3 "$report" plot "$results/$tag-$date.svg" "${csvs[@]}" >/dev/null
	python3 "$report" table "${csvs[@]}" >"$results/$tag-$date.md"
	echo
	printf '%s\n' "${summary[@]}"
	echo "results: ${csvs[*]}"
	echo "plot:    $results/$tag-$date.svg"
	echo "tables:  $results/$tag-$date.md"
fi
if [ $publish = 1 ] && [ ${#csvs[@]} -gt 0 ]; then
	docs=$MMVIEW_REPO/docs/bench
	mkdir -p "$docs"
	published=()
	for csv in "${csvs[@]}"; do
		arch=${csv#"$results/$tag-"}
		arch=${arch%%-*}
		cp "$csv" "$docs/$tag-$arch.csv"
		cp "${csv%.csv}.meta" "$docs/$tag-$arch.meta"
		published+=("$docs/$tag-$arch.csv")
	done
	python3 "$report" plot "$docs/$tag.svg" "${published[@]}" >/dev/null
	{
		echo "# mmview benchmark results"
		echo
		echo "Produced by \`$command_line\`; see [README.md](README.md) for what each figure"
		echo "measures. Plot: [$tag.svg]($tag.svg). Data: $(for c in "${published[@]}"; do
			printf '[%s](%s) ' "${c##*/}" "${c##*/}"; done)"
		echo
		python3 "$report" table "${published[@]}"
	} >"$docs/results.md"
	echo "published to $docs: results.md, $tag.svg, ${published[*]##*/}"
fi
exit $status
