// SPDX-License-Identifier: GPL-2.0
/*
 * mmview(2) system call entry and the vm.mmview_max_views sysctl.
 *
 * The entry is a thin C stub: SYSCALL_DEFINE provides the per-arch wrappers
 * (__x64_sys_mmview, __arm64_sys_mmview) and the Rust side in mm/mmview_rs/
 * decodes the operation and holds all policy.
 */
#include <linux/init.h>
#include <linux/mmview.h>
#include <linux/syscalls.h>
#include <linux/sysctl.h>

SYSCALL_DEFINE3(mmview, long, op, unsigned long, arg1, unsigned long, arg2)
{
	return mmview_rs_syscall(op, arg1, arg2);
}

/*
 * vm.mmview_max_views: how many views one process may hold, counting the
 * base and deleted views that threads still use. MMVIEW_CREATE beyond it
 * fails with ENOSPC.
 */
static int sysctl_mmview_max_views __read_mostly = MMVIEW_DEFAULT_MAX_VIEWS;
static int mmview_max_views_limit = MMVIEW_MAX_VIEWS_LIMIT;

/* Lockless: a racing write makes one CREATE see the old or the new limit. */
int mmview_max_views(void)
{
	return READ_ONCE(sysctl_mmview_max_views);
}

#ifdef CONFIG_SYSCTL
static struct ctl_table mmview_sysctl_table[] = {
	{
		.procname	= "mmview_max_views",
		.data		= &sysctl_mmview_max_views,
		.maxlen		= sizeof(int),
		.mode		= 0644,
		.proc_handler	= proc_dointvec_minmax,
		.extra1		= SYSCTL_ONE,
		.extra2		= &mmview_max_views_limit,
	},
};

static int __init mmview_sysctl_init(void)
{
	register_sysctl_init("vm", mmview_sysctl_table);
	return 0;
}
subsys_initcall(mmview_sysctl_init);
#endif
