#!/usr/bin/env bash
# Builds the x86_64 kernel (normal variant) and boots it into the demo
# program, which shows the mmview system call at work.
# usage: demo.sh [ARCH [VARIANT]]     default: x86_64 normal
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"
arch=${1:-x86_64} variant=${2:-normal}
"$MMVIEW_REPO/scripts/setup.sh"
"$MMVIEW_REPO/scripts/build-userspace.sh" "$arch" >/dev/null
"$MMVIEW_REPO/scripts/build-kernel.sh" "$arch" "$variant"
exec "$MMVIEW_REPO/scripts/qemu/boot.sh" "$arch" "$variant" --run demo --timeout 600
