/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmview: several address spaces ("views") in one process.
 *
 * The policy (syscall dispatch, argument checks, the view registry) is in
 * Rust, in mm/mmview_rs/. This header declares what C calls into it.
 */
#ifndef _LINUX_MMVIEW_H
#define _LINUX_MMVIEW_H

#include <linux/types.h>
#include <uapi/linux/mmview.h>

struct mm_struct;

/* The default and the highest value of the vm.mmview_max_views sysctl. */
#define MMVIEW_DEFAULT_MAX_VIEWS	1024
#define MMVIEW_MAX_VIEWS_LIMIT		65536

#ifdef CONFIG_MMVIEW
/* The mmview(2) system call, in Rust. Process context, no locks held. */
long mmview_rs_syscall(long op, unsigned long arg1, unsigned long arg2);

/* The current value of vm.mmview_max_views. Any context. */
int mmview_max_views(void);

int mmview_designate_locked(struct mm_struct *mm, unsigned long start,
			    unsigned long end, bool unshared);
int mmview_mprotect_check(struct mm_struct *mm, unsigned long start,
			  unsigned long end);
#else
static inline int mmview_mprotect_check(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	return 0;
}
#endif

#endif /* _LINUX_MMVIEW_H */
