#!/usr/bin/env bash
# Installs everything the build and the tests need on a bare Debian 12 machine:
# apt packages, bindgen-cli, the arm64 Rust std for guest binaries, and the
# pinned kernel source. Idempotent: takes seconds when everything is present.
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

PKGS=(rustc-web rust-web-src cargo-web rust-web-clippy libclang-dev clang lld llvm
	gcc make bc flex bison libelf-dev libssl-dev cpio xz-utils python3 perl
	qemu-system-x86 qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross
	python3-ply python3-git file ca-certificates curl git groff-base)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "installing apt packages: ${missing[*]}"
	SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bindgen: Debian's is too old for 6.12; a pinned bindgen-cli from crates.io.
if ! [ -x "$BINDGEN" ] || ! "$BINDGEN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; then
	log "installing bindgen-cli $BINDGEN_VERSION"
	command -v cargo >/dev/null || die "cargo not found (rustup's or Debian's cargo-web)"
	cargo install --quiet --locked bindgen-cli --version "$BINDGEN_VERSION" --root "$TOOLS_DIR"
fi

# arm64 Rust std matching rustc-web, for the static guest binaries.
rustc_ver=$(dpkg-query -W -f='${Version}' rustc-web)
if ! [ -f "$ARM64_SYSROOT/.version" ] || [ "$(cat "$ARM64_SYSROOT/.version")" != "$rustc_ver" ]; then
	log "fetching libstd-rust-web-dev:arm64 $rustc_ver"
	apt_dir=$MMVIEW_CACHE/apt-arm64
	rm -rf "$apt_dir" "$ARM64_SYSROOT"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$ARM64_SYSROOT"
	cat >"$apt_dir/sources.list" <<SRC
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
SRC
	aopts=(-o APT::Architecture=arm64 -o APT::Architectures::=arm64
		-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache"
		-o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	apt-get "${aopts[@]}" update -qq
	(cd "$apt_dir" && apt-get "${aopts[@]}" download "libstd-rust-web-dev:arm64=$rustc_ver") ||
		die "cannot fetch libstd-rust-web-dev:arm64=$rustc_ver (it must match rustc-web)"
	for deb in "$apt_dir"/*.deb; do dpkg-deb -x "$deb" "$ARM64_SYSROOT"; done
	echo "$rustc_ver" >"$ARM64_SYSROOT/.version"
fi

"$MMVIEW_REPO/scripts/fetch-kernel.sh"
log "setup complete"
