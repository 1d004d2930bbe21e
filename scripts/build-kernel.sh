#!/usr/bin/env bash
# Builds the mmview kernel for one arch and variant in its persistent build
# folder (~/.cache/mmview/build/ARCH-VARIANT) and prints the image's path.
#
# usage: build-kernel.sh ARCH VARIANT [--no-assemble]
#   ARCH: x86_64 | arm64
#   VARIANT: normal (GCC) | debug (clang; KASAN, lockdep, ...) | off (normal without CONFIG_MMVIEW)
# Extra make variables can be given in MMVIEW_MAKE_ARGS (e.g. "CONFIG_MMVIEW=n" is
# not one: use MMVIEW_EXTRA_CONFIG=path/to/fragment for config changes).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

arch=${1:?usage: build-kernel.sh ARCH VARIANT [--no-assemble]}
variant=${2:?usage: build-kernel.sh ARCH VARIANT [--no-assemble]}
[ "${3:-}" = --no-assemble ] || "$MMVIEW_REPO/scripts/assemble-tree.sh" >/dev/null

build=$BUILD_ROOT/$arch-$variant
[ -n "${MMVIEW_BUILD_SUFFIX:-}" ] && build=$build-$MMVIEW_BUILD_SUFFIX
mkdir -p "$build"
mapfile -t margs < <(kmake_args "$arch" "$variant")
margs=("${margs[@]/#O=*/O=$build}")
[ "$arch-$variant" = x86_64-normal ] && margs+=(CLIPPY=1)
# shellcheck disable=SC2206
margs+=(${MMVIEW_MAKE_ARGS:-})

cfgdir=$MMVIEW_REPO/scripts/configs
frags=("$cfgdir/base.config" "$cfgdir/$arch.config" "$cfgdir/$variant.config")
[ -n "${MMVIEW_EXTRA_CONFIG:-}" ] && frags+=("$MMVIEW_EXTRA_CONFIG")

# Regenerate .config only when the fragments or a Kconfig file changed.
key=$( { cat "${frags[@]}"; git -C "$SRC_DIR" ls-tree -r HEAD | grep 'Kconfig'; echo "${margs[*]}"; } | sha256sum | cut -c1-16)
if [ "$(cat "$build/.mmview-config-key" 2>/dev/null)" != "$key" ] || ! [ -f "$build/.config" ]; then
	log "$arch/$variant: configuring (tinyconfig + ${frags[*]##*/})"
	make -s "${margs[@]}" tinyconfig >/dev/null
	KCONFIG_CONFIG=$build/.config "$SRC_DIR/scripts/kconfig/merge_config.sh" -m -O "$build" \
		"$build/.config" "${frags[@]}" >"$build/merge_config.log" 2>&1
	make -s "${margs[@]}" olddefconfig >/dev/null
	# Every setting the fragments ask for (the last word on each option wins)
	# must have stuck: Rust in particular stays off silently when the
	# toolchain is not found.
	bad=()
	while read -r line; do
		case $line in
		CONFIG_*=*) grep -qxF "$line" "$build/.config" || bad+=("$line") ;;
		"# CONFIG_"*" is not set") opt=${line#\# }; opt=${opt%% *}
			grep -q "^$opt=" "$build/.config" && bad+=("$line") ;;
		esac
	done < <(cat "${frags[@]}" | sed -n 's/^\(# \)\{0,1\}\(CONFIG_[A-Za-z0-9_]*\)[ =].*/\2 &/p' |
		awk '{opt=$1; sub(/^[^ ]* /, ""); last[opt]=$0} END {for (o in last) print last[o]}')
	if [ ${#bad[@]} -gt 0 ]; then
		make -s "${margs[@]}" rustavailable >&2 || true
		die "$arch/$variant: these settings did not stick (missing dependency?): ${bad[*]}"
	fi
	echo "$key" >"$build/.mmview-config-key"
fi

log "$arch/$variant: building in $build"
start=$SECONDS
if ! make -s "${margs[@]}" -j"$(nproc)" >"$build/build.log" 2>&1; then
	tail -n 40 "$build/build.log" >&2
	die "$arch/$variant: kernel build failed (full log: $build/build.log)"
fi
if [ -s "$build/build.log" ]; then
	cat "$build/build.log" >&2
	die "$arch/$variant: the build printed warnings (above); the kernel must build clean"
fi
log "$arch/$variant: built in $((SECONDS - start)) s"
img=$(kernel_image "$arch" "$variant")
echo "${img/$BUILD_ROOT\/$arch-$variant/$build}"
