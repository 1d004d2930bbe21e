#!/usr/bin/env bash
# Host-side checks of the work, one KTAP-style line each:
#   - the exported series applies with git am to pristine 6.12.118;
#   - scripts/checkpatch.pl is clean on the series;
#   - the kernel Rust is rustfmt clean (clippy runs in the x86_64/normal build);
#   - the userspace workspace is cargo fmt / clippy -D warnings clean and its
#     host unit tests pass.
# Prints "host/lint: N passed, M failed" last; exit status 0 only if all pass.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

pass=0 fail=0
check() {
	local name=$1
	shift
	local out
	if out=$("$@" 2>&1); then
		echo "ok - $name"
		pass=$((pass + 1))
	else
		echo "not ok - $name"
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/    /'
		fail=$((fail + 1))
	fi
}

series=$(mktemp -d)
trap 'rm -rf "$series"' EXIT

checkpatch() {
	"$MMVIEW_REPO/scripts/export-series.sh" "$series" >/dev/null || return 1
	# spdxcheck.py needs Debian's python3 with ply and git; FILE_PATH_CHANGES
	# fires for every new file although the series adds a MAINTAINERS entry.
	(cd "$SRC_DIR" && PATH=/usr/bin:$PATH perl scripts/checkpatch.pl -q --strict \
		--ignore FILE_PATH_CHANGES "$series"/*.patch)
}

kernel_rustfmt() {
	rustfmt --check --edition 2021 --config-path "$SRC_DIR/.rustfmt.toml" \
		$(cd "$MMVIEW_REPO" && git ls-files --cached --others --exclude-standard -- '*.rs' |
			grep -v '^tools/' | sed "s|^|$MMVIEW_REPO/|")
}

# The manual page renders with no groff warning.
man_page() {
	local out
	out=$(LC_ALL=C.UTF-8 groff -man -ww -z "$MMVIEW_REPO/docs/man/mmview.2" 2>&1) || return 1
	[ -z "$out" ] || { echo "$out"; return 1; }
}

ws=$MMVIEW_REPO/tools/mmview-tests
export CARGO_TARGET_DIR=$MMVIEW_CACHE/cargo-host
check harness_judge_self_test python3 "$MMVIEW_REPO/scripts/qemu/test_analyse.py"
check series_applies_with_git_am "$MMVIEW_REPO/scripts/export-series.sh" --check
check checkpatch_clean checkpatch
check kernel_rust_rustfmt_clean kernel_rustfmt
check man_page_renders man_page
check userspace_cargo_fmt_clean cargo fmt --manifest-path "$ws/Cargo.toml" --all -- --check
check userspace_clippy_clean cargo clippy --manifest-path "$ws/Cargo.toml" --workspace --all-targets -q -- -D warnings
check userspace_host_unit_tests cargo test --manifest-path "$ws/Cargo.toml" --workspace -q

echo "host/lint: $pass passed, $fail failed"
[ $fail = 0 ]
