// SPDX-License-Identifier: GPL-2.0
/*
 * mmview(2): the system call entry, the vm.mmview_max_views sysctl, and the
 * mm-internal operations the Rust side (mm/mmview_rs/) calls.
 *
 * The entry is a thin C stub: SYSCALL_DEFINE provides the per-arch wrappers
 * (__x64_sys_mmview, __arm64_sys_mmview) and the Rust side in mm/mmview_rs/
 * decodes the operation and holds all policy.
 */
#include <linux/hugetlb.h>
#include <linux/init.h>
#include <linux/mm.h>
#include <linux/mmap_lock.h>
#include <linux/mmview.h>
#include <linux/syscalls.h>
#include <linux/sysctl.h>

#include "internal.h"
#include "vma.h"

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

/**
 * mmview_designate_locked - designate the mappings of a range unshared or
 * shared (MMVIEW_UNSHARE, MMVIEW_SHARE)
 * @mm: the address space
 * @start: start of the range, page aligned
 * @end: end of the range, page aligned, above @start and within TASK_SIZE
 * @unshared: the designation
 *
 * Sets or clears VM_MMVIEW_UNSHARED on every mapping in [@start, @end),
 * splitting mappings at the range ends; holes are skipped. At a range end
 * inside a hugetlb mapping the range extends to the huge page boundary.
 * Nothing changes on failure, but for an allocation failure while splitting.
 *
 * Locks: the mmap_lock of @mm held for writing (which, for a process with
 * views, is the family's lock), so no mapping changes under the two passes.
 *
 * Return: 0; -EINVAL if no mapping intersects the range or the range starts
 * inside a huge page; -EACCES to unshare a MAP_SHARED mapping; -ENOMEM if
 * the splits would exceed vm.max_map_count, or on allocation failure.
 */
int mmview_designate_locked(struct mm_struct *mm, unsigned long start,
			    unsigned long end, bool unshared)
{
	struct vm_area_struct *vma, *prev;
	struct vma_iterator vmi;
	int splits = 0;

	mmap_assert_write_locked(mm);
	vma_iter_init(&vmi, mm, start);

	/* First pass: check everything and count the splits. */
	for_each_vma_range(vmi, vma, end) {
		vm_flags_t want = unshared ? vma->vm_flags | VM_MMVIEW_UNSHARED :
					     vma->vm_flags & ~VM_MMVIEW_UNSHARED;

		if (unshared && (vma->vm_flags & VM_MAYSHARE))
			return -EACCES;
		if (is_vm_hugetlb_page(vma)) {
			unsigned long hmask = huge_page_mask(hstate_vma(vma));

			if (vma->vm_start < start && (start & ~hmask))
				return -EINVAL;
			if (vma->vm_end > end)
				end = (end + ~hmask) & hmask;
		}
		if (want == vma->vm_flags)
			continue;
		splits += vma->vm_start < start;
		splits += vma->vm_end > end;
	}
	vma_iter_set(&vmi, start);
	vma = vma_find(&vmi, end);
	if (!vma)
		return -EINVAL;
	if (mm->map_count + splits > sysctl_max_map_count)
		return -ENOMEM;

	/* Second pass: change the flags, as mprotect() and mlock() do. */
	prev = vma_prev(&vmi);
	if (start > vma->vm_start)
		prev = vma;
	vma_iter_set(&vmi, start);
	for_each_vma_range(vmi, vma, end) {
		vm_flags_t want = unshared ? vma->vm_flags | VM_MMVIEW_UNSHARED :
					     vma->vm_flags & ~VM_MMVIEW_UNSHARED;

		if (want != vma->vm_flags) {
			vma = vma_modify_flags(&vmi, prev, vma,
					       max(start, vma->vm_start),
					       min(end, vma->vm_end), want);
			if (IS_ERR(vma))
				return PTR_ERR(vma);
			/* vm_flags is protected by the mmap_lock held for writing. */
			vma_start_write(vma);
			vm_flags_reset(vma, want);
		}
		prev = vma;
	}
	return 0;
}

/**
 * mmview_mprotect_check - refuse an mprotect() across shared and unshared
 * mappings
 * @mm: the address space
 * @start: start of the mprotect() range
 * @end: end of the mprotect() range
 *
 * mprotect() on an unshared range changes only the calling thread's view,
 * on a shared range every view; a range that mixes both is refused.
 *
 * Locks: the mmap_lock of @mm held for writing (do_mprotect_pkey()).
 *
 * Return: 0, or -EACCES if [@start, @end) mixes shared and unshared mappings.
 */
int mmview_mprotect_check(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	struct vm_area_struct *vma, *first = NULL;
	struct vma_iterator vmi;

	mmap_assert_write_locked(mm);
	vma_iter_init(&vmi, mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (!first)
			first = vma;
		else if ((vma->vm_flags ^ first->vm_flags) & VM_MMVIEW_UNSHARED)
			return -EACCES;
	}
	return 0;
}
