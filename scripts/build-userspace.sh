#!/usr/bin/env bash
# Build the guest userspace (the tools/mmview-tests workspace) statically, in
# release mode, for one architecture, and copy the binaries to $OUT/bin/.
#
# usage: scripts/build-userspace.sh x86_64|arm64
#   OUT  where bin/ goes (default: $OUT_ROOT/<arch>, i.e. ~/.cache/mmview/out/<arch>)
#
# x86_64 uses rustup's toolchain; arm64 uses Debian's rustc-web with the
# arm64 std that scripts/setup.sh unpacks into $ARM64_SYSROOT (rustup has no
# aarch64 std here). Each arch has its own CARGO_TARGET_DIR so that the two
# compilers never share build artefacts.
set -euo pipefail

# shellcheck source=lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BINARIES=(mmview-tests mmview-init mmview-demo mmview-bench)

[ $# -eq 1 ] || die "usage: $0 x86_64|arm64"
arch=$1
OUT=${OUT:-$OUT_ROOT/$arch}
workspace=$MMVIEW_REPO/tools/mmview-tests
export CARGO_TARGET_DIR=$MMVIEW_CACHE/target/userspace-$arch

# Only the per-target flags below apply.
unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS

case $arch in
x86_64)
	target=x86_64-unknown-linux-gnu
	machine=x86-64
	unset RUSTC
	export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
	;;
arm64)
	target=aarch64-unknown-linux-gnu
	machine=aarch64
	[ -f "$ARM64_SYSROOT/.version" ] ||
		die "no arm64 Rust std in $ARM64_SYSROOT: run scripts/setup.sh first"
	export RUSTC=/usr/bin/rustc
	export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
	export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUSTFLAGS="--sysroot $ARM64_SYSROOT/usr -C target-feature=+crt-static"
	;;
*) die "unknown arch '$arch' (want x86_64 or arm64)" ;;
esac

bin_args=()
for bin in "${BINARIES[@]}"; do bin_args+=(--bin "$bin"); done
log "building ${BINARIES[*]} for $arch ($target)"
cargo build --manifest-path "$workspace/Cargo.toml" --locked --release --target "$target" "${bin_args[@]}"

mkdir -p "$OUT/bin"
for bin in "${BINARIES[@]}"; do
	built=$CARGO_TARGET_DIR/$target/release/$bin
	if command -v file >/dev/null; then
		desc=$(file -b "$built")
		case $desc in
		*"$machine"*static*) ;;
		*) die "$built is not a static $machine binary: $desc" ;;
		esac
	fi
	install -m 0755 "$built" "$OUT/bin/$bin"
done
log "installed ${BINARIES[*]} in $OUT/bin"
echo "$OUT/bin"
