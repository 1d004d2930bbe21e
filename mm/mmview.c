// SPDX-License-Identifier: GPL-2.0
/*
 * mmview(2) system call entry.
 *
 * The entry is a thin C stub: SYSCALL_DEFINE provides the per-arch wrappers
 * (__x64_sys_mmview, __arm64_sys_mmview) and the Rust side in mm/mmview_rs/
 * decodes the operation and holds all policy.
 */
#include <linux/mmview.h>
#include <linux/syscalls.h>

SYSCALL_DEFINE3(mmview, long, op, unsigned long, arg1, unsigned long, arg2)
{
	return mmview_rs_syscall(op, arg1, arg2);
}
