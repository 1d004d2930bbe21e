#!/usr/bin/env bash
# Packs the guest userspace of one arch into an initramfs (newc cpio):
# /init is mmview-init, the other programs go to /bin.
# usage: mkinitramfs.sh ARCH BIN_DIR OUT.cpio GEN_INIT_CPIO
set -euo pipefail
arch=$1 bin=$2 out=$3 gen=$4
[ -x "$bin/mmview-init" ] || { echo "error: $bin/mmview-init missing (build the userspace for $arch)" >&2; exit 1; }
list=$(mktemp)
trap 'rm -f "$list"' EXIT
cat >"$list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /tmp 1777 0 0
dir /bin 0755 0 0
file /init $bin/mmview-init 0755 0 0
LIST
for f in "$bin"/*; do
	name=$(basename "$f")
	[ "$name" = mmview-init ] && continue
	echo "file /bin/$name $f 0755 0 0" >>"$list"
done
"$gen" "$list" >"$out.tmp"
mv "$out.tmp" "$out"
