# shellcheck shell=bash
# Common settings for the mmview scripts. Sourced, never run.

MMVIEW_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MMVIEW_CACHE=${MMVIEW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmview}

# The pinned kernel: Debian's linux-source-6.12, checked against this sha256.
KVER=6.12.118
KPKG=linux-source-6.12
KPKG_VERSION=6.12.118-1
KPKG_SHA256_FILE=$MMVIEW_REPO/scripts/kernel-source.sha256

BINDGEN_VERSION=0.73.2
TOOLS_DIR=$MMVIEW_CACHE/tools
BINDGEN=$TOOLS_DIR/bin/bindgen
ARM64_SYSROOT=$MMVIEW_CACHE/arm64-sysroot

SRC_DIR=$MMVIEW_CACHE/src/linux-$KVER      # git repo: commit "pristine" + assembled HEAD
BUILD_ROOT=$MMVIEW_CACHE/build              # one persistent O= folder per arch/variant
OUT_ROOT=$MMVIEW_CACHE/out                  # initramfs, logs, userspace binaries

# rustup's cargo and rustfmt (userspace builds, formatting) live here.
case ":$PATH:" in *":$HOME/.cargo/bin:"*) ;; *) [ -d "$HOME/.cargo/bin" ] && PATH=$HOME/.cargo/bin:$PATH ;; esac

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Arguments every kernel make call needs (config targets included: Rust
# availability is decided at config time).
# usage: kmake_args ARCH VARIANT -> prints words
kmake_args() {
	local arch=$1 variant=$2
	local -a a=(-C "$SRC_DIR" O="$BUILD_ROOT/$arch-$variant"
		RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
		BINDGEN="$BINDGEN" RUSTFMT="$(command -v rustfmt || echo rustfmt)"
		CLIPPY_DRIVER=/usr/bin/clippy-driver)
	case $arch in
	x86_64) a+=(ARCH=x86_64) ;;
	arm64) a+=(ARCH=arm64) ;;
	*) die "unknown arch $arch" ;;
	esac
	case $variant in
	normal | off) [ "$arch" = arm64 ] && a+=(CROSS_COMPILE=aarch64-linux-gnu-) ;;
	debug) a+=(LLVM=1) ;;
	*) die "unknown variant $variant" ;;
	esac
	printf '%s\n' "${a[@]}"
}

kernel_image() {
	local arch=$1 variant=$2
	case $arch in
	x86_64) echo "$BUILD_ROOT/$arch-$variant/arch/x86/boot/bzImage" ;;
	arm64) echo "$BUILD_ROOT/$arch-$variant/arch/arm64/boot/Image" ;;
	esac
}

export LIBCLANG_PATH=/usr/lib/llvm-14/lib

# The folders of this repo that are overlaid onto the kernel tree.
OVERLAY_DIRS="arch block Documentation drivers fs include init kernel lib mm rust security tools/testing"
OVERLAY_MESSAGE=$MMVIEW_REPO/linux-patches/overlay.msg
