#!/usr/bin/env bash
# The test command: from a bare machine, installs what is needed, builds the
# mmview kernel for every arch and variant, boots each under QEMU with the
# test suite (normal variants also with the benchmark's smoke mode), and
# judges the runs (any failed or missing test, timeout or kernel splat
# fails). Host checks (series, checkpatch, format, lint) run first. Prints
# one summary line per target and the grand total last.
#
# usage: test-all.sh [TARGET...]     TARGET: ARCH/VARIANT (see build-kernel.sh), default:
#                                    x86_64/normal x86_64/debug arm64/normal arm64/debug x86_64/off
# Environment: MMVIEW_TIMEOUT (seconds per boot, default 1500).
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64/normal x86_64/debug arm64/normal arm64/debug x86_64/off)
timeout=${MMVIEW_TIMEOUT:-1500}
summary=()
total_pass=0 total_fail=0
t0=$SECONDS

# Adds the counts of a "LABEL: N passed, M failed" line to the totals.
tally() {
	local line=$1 p f
	summary+=("$line")
	p=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\1/p' <<<"$line")
	f=$(sed -n 's/.*: \([0-9]*\) passed, \([0-9]*\) failed.*/\2/p' <<<"$line")
	total_pass=$((total_pass + ${p:-0}))
	total_fail=$((total_fail + ${f:-1}))
}

finish() {
	echo
	echo "==================== summary ($(((SECONDS - t0) / 60)) min) ===================="
	printf '%s\n' "${summary[@]}"
	echo "$total_pass passed, $total_fail failed"
	[ "$total_fail" = 0 ]
	exit
}

step() { # name command...: a setup step that must succeed
	local name=$1
	shift
	log "$name"
	if ! "$@"; then
		tally "$name: 0 passed, 1 failed"
		finish
	fi
}

step "setup" "$MMVIEW_REPO/scripts/setup.sh"
step "assemble" "$MMVIEW_REPO/scripts/assemble-tree.sh"

log "host checks"
lint_out=$("$MMVIEW_REPO/scripts/lint.sh" 2>&1)
printf '%s\n' "$lint_out"
tally "$(tail -n 1 <<<"$lint_out")"

declare -A built_userspace=()
for t in "${targets[@]}"; do
	arch=${t%/*} variant=${t#*/}
	if [ -z "${built_userspace[$arch]:-}" ]; then
		if "$MMVIEW_REPO/scripts/build-userspace.sh" "$arch" >/dev/null; then
			built_userspace[$arch]=ok
		else
			built_userspace[$arch]=failed
		fi
	fi
	if [ "${built_userspace[$arch]}" != ok ]; then
		tally "$t: userspace build failed, 0 passed, 1 failed"
		continue
	fi
	if ! "$MMVIEW_REPO/scripts/build-kernel.sh" "$arch" "$variant" --no-assemble >/dev/null; then
		tally "$t: kernel build failed, 0 passed, 1 failed"
		continue
	fi
	log "$t: booting the test suite (log: $OUT_ROOT/$arch-$variant-tests.log)"
	start=$SECONDS
	args=()
	[ "$variant" = off ] && args=(--args --config-off)
	"$MMVIEW_REPO/scripts/qemu/boot.sh" "$arch" "$variant" --run tests --quiet --timeout "$timeout" "${args[@]}"
	log "$t: guest ran for $((SECONDS - start)) s"
	result=$("$MMVIEW_REPO/scripts/qemu/analyse.py" "$OUT_ROOT/$arch-$variant-tests.log" "$t")
	printf '%s\n' "$result"
	tally "$(tail -n 1 <<<"$result")"
	# The benchmark's smoke mode (tiny sizes, seconds), so that it never rots.
	if [ "$variant" = normal ]; then
		log "$t: booting the benchmark smoke run (log: $OUT_ROOT/$arch-$variant-bench.log)"
		"$MMVIEW_REPO/scripts/qemu/boot.sh" "$arch" "$variant" --run bench --args --smoke --quiet --timeout 300
		result=$("$MMVIEW_REPO/scripts/qemu/analyse.py" "$OUT_ROOT/$arch-$variant-bench.log" "$t/bench-smoke")
		printf '%s\n' "$result"
		tally "$(tail -n 1 <<<"$result")"
	fi
done
finish
