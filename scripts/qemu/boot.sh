#!/usr/bin/env bash
# Boots a built kernel with the guest userspace under QEMU (TCG) and keeps the
# serial console in a log file. The guest's /init runs one program (tests,
# demo or bench) and powers off.
#
# usage: boot.sh ARCH VARIANT [options]
#   --run PROG        tests (default) | demo | bench
#   --args A,B        arguments for the program (comma-separated)
#   --log FILE        console log (default ~/.cache/mmview/out/ARCH-VARIANT-PROG.log)
#   --timeout S       kill QEMU after S seconds (default 1200); exit status 124
#   --mem SIZE        guest memory (default 2G)
#   --kernel IMAGE    boot this image instead of the build folder's
#   --kvm             use KVM (hangs on machines without nested virtualisation)
#   --quiet           do not echo the console
set -euo pipefail
. "$(dirname "$0")/../lib/common.sh"

arch=${1:?usage: boot.sh ARCH VARIANT [options]}
variant=${2:?usage: boot.sh ARCH VARIANT [options]}
shift 2
run=tests args= log= timeout=1200 mem=2G accel=tcg quiet=0 image=
while [ $# -gt 0 ]; do
	case $1 in
	--run) run=$2; shift ;;
	--args) args=$2; shift ;;
	--log) log=$2; shift ;;
	--timeout) timeout=$2; shift ;;
	--mem) mem=$2; shift ;;
	--kernel) image=$2; shift ;;
	--kvm) accel=kvm ;;
	--quiet) quiet=1 ;;
	*) die "unknown option $1" ;;
	esac
	shift
done

build=$BUILD_ROOT/$arch-$variant
[ -n "$image" ] || image=$(kernel_image "$arch" "$variant")
[ -f "$image" ] || die "no kernel image at $image: run scripts/build-kernel.sh $arch $variant"
bin=$OUT_ROOT/$arch/bin
initrd=$OUT_ROOT/$arch-initramfs.cpio
"$MMVIEW_REPO/scripts/qemu/mkinitramfs.sh" "$arch" "$bin" "$initrd" "$build/usr/gen_init_cpio"
[ -n "$log" ] || log=$OUT_ROOT/$arch-$variant-$run.log
mkdir -p "$(dirname "$log")"

append="panic=-1 mmview.run=$run"
[ -n "$args" ] && append+=" mmview.args=$args"
case $arch in
x86_64)
	qemu=(qemu-system-x86_64 -cpu max)
	# tsc=reliable: under TCG the TSC watchdog, comparing against jiffies that
	# lag on a busy host, would mark the TSC unstable and leave CLOCK_MONOTONIC
	# in jiffies steps.
	append="console=ttyS0 tsc=reliable $append"
	;;
arm64)
	qemu=(qemu-system-aarch64 -M virt -cpu cortex-a57)
	append="console=ttyAMA0 $append"
	;;
esac
qemu+=(-accel "$accel" -smp 2 -m "$mem" -nodefaults -no-reboot -nographic
	-serial stdio -monitor none -display none
	-kernel "$image" -initrd "$initrd" -append "$append")

status=0
if [ $quiet = 1 ]; then
	timeout -k 10 "$timeout" "${qemu[@]}" </dev/null >"$log" 2>&1 || status=$?
else
	timeout -k 10 "$timeout" "${qemu[@]}" </dev/null 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
fi
[ $status = 124 ] && echo "error: $arch/$variant: QEMU timed out after ${timeout}s (log: $log)" >&2
exit $status
