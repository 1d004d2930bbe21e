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
#include <linux/file.h>
#include <linux/init.h>
#include <linux/jump_label.h>
#include <linux/ksm.h>
#include <linux/mm.h>
#include <linux/mm_inline.h>
#include <linux/mman.h>
#include <linux/mempolicy.h>
#include <linux/mmap_lock.h>
#include <linux/mmu_context.h>
#include <linux/mmu_notifier.h>
#include <linux/mmview.h>
#include <linux/page_ext.h>
#include <linux/page_table_check.h>
#include <linux/pagewalk.h>
#include <linux/pkeys.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/security.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/syscalls.h>
#include <linux/sysctl.h>
#include <linux/userfaultfd_k.h>

#include <asm/tlb.h>

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

/*
 * How many mappings of @mm a change of [@start, @end) splits off: one at
 * each end that falls inside a mapping.
 */
static int mmview_splits(struct mm_struct *mm, unsigned long start,
			 unsigned long end)
{
	struct vm_area_struct *vma;
	int splits = 0;

	vma = find_vma_intersection(mm, start, start + 1);
	splits += vma && vma->vm_start < start;
	vma = find_vma_intersection(mm, end - 1, end);
	splits += vma && vma->vm_end > end;
	return splits;
}

/*
 * Whether every member of @mm's family can split its mappings at the ends
 * of [@start, @end) within vm.max_map_count, so that a layout change
 * replicated to all of them cannot fail half way for that reason.
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or -ENOMEM.
 */
static int mmview_splits_fit(struct mm_struct *mm, unsigned long start,
			     unsigned long end)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	list_for_each_entry(sib, &fam->mms, mmview_node)
		if (sib->map_count + mmview_splits(sib, start, end) >
		    sysctl_max_map_count)
			return -ENOMEM;
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
 * on a shared range every view; a range that mixes both is refused. For a
 * shared range, every member must be able to split its mappings at the
 * range ends, or the call fails before anything changes (a member that
 * failed half way would keep other permissions than the rest).
 *
 * Locks: the mmap_lock of @mm held for writing (do_mprotect_pkey()).
 *
 * Return: 0, -EACCES if [@start, @end) mixes shared and unshared mappings,
 * or -ENOMEM if a member's split would exceed vm.max_map_count.
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
	if (!first || (first->vm_flags & VM_MMVIEW_UNSHARED) ||
	    !mmview_family(mm))
		return 0;
	return mmview_splits_fit(mm, start, end);
}

/* ------------------------------------------------------------------------
 * The family: forming it, adding views, task counts, teardown.
 */

static int mmview_split_pmd_entry(pmd_t *pmd, unsigned long addr,
				  unsigned long next, struct mm_walk *walk)
{
	pmd_t val = pmdp_get_lockless(pmd);

	if (pmd_trans_huge(val) || pmd_devmap(val))
		split_huge_pmd(walk->vma, pmd, addr);
	walk->action = ACTION_CONTINUE;
	return 0;
}

static const struct mm_walk_ops mmview_split_ops = {
	.pmd_entry	= mmview_split_pmd_entry,
	.walk_lock	= PGWALK_WRLOCK,
};

/**
 * mmview_family_check_locked - whether @mm can form a family
 * @mm: the calling thread's mm
 *
 * Refuses what views cannot serve yet: KSM merging, userfaultfd, mmu
 * notifiers (KVM, VFIO, SVA) and CLONE_VM children outside the thread group.
 *
 * Locks: @mm's mmap_lock held for writing.
 *
 * Return: 0, or -EOPNOTSUPP.
 */
int mmview_family_check_locked(struct mm_struct *mm)
{
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	vma_iter_init(&vmi, mm, 0);
	mmap_assert_write_locked(mm);
	if (mm_has_notifiers(mm) || test_bit(MMF_VM_MERGEABLE, &mm->flags) ||
	    test_bit(MMF_VM_MERGE_ANY, &mm->flags) ||
	    test_bit(MMF_MULTIPROCESS, &mm->flags))
		return -EOPNOTSUPP;
	for_each_vma(vmi, vma)
		if (userfaultfd_armed(vma))
			return -EOPNOTSUPP;
	return 0;
}

/**
 * mmview_family_create_locked - make @mm the lock owner and base of a new
 * family
 * @mm: the calling thread's mm, not yet in a family
 * @registry: the Rust view registry of the family
 *
 * Gives every private mapping its anon_vma (views clone it, so rmap finds
 * their PTEs and pgoffs never diverge), splits the huge PMDs of shared
 * private mappings (views copy PTEs), takes the family's reference on @mm,
 * and switches @mm's faults from the per-VMA lock to the mmap_lock.
 *
 * Locks: @mm's mmap_lock held for writing.
 *
 * Return: the family, or NULL without memory (nothing changed then, but
 * for anon_vmas prepared and huge PMDs split).
 */
struct mmview_family *mmview_family_create_locked(struct mm_struct *mm,
						  void *registry)
{
	struct mmview_family *fam;
	struct vm_area_struct *vma;
	struct vma_iterator vmi;

	vma_iter_init(&vmi, mm, 0);
	mmap_assert_write_locked(mm);
	if (WARN_ON_ONCE(mmview_family(mm)))
		return NULL;
	fam = kzalloc(sizeof(*fam), GFP_KERNEL_ACCOUNT);
	if (!fam)
		return NULL;
	for_each_vma(vmi, vma) {
		if (vma->vm_flags & (VM_MAYSHARE | VM_PFNMAP | VM_MIXEDMAP |
				     VM_HUGETLB))
			continue;
		if (anon_vma_prepare(vma)) {
			kfree(fam);
			return NULL;
		}
		if (mmview_flags_synced(vma->vm_flags))
			walk_page_range(mm, vma->vm_start, vma->vm_end,
					&mmview_split_ops, NULL);
	}
	fam->owner = mm;
	fam->base = mm;
	mmgrab(mm);
	mmgrab(mm);
	mmget(mm);
	fam->signal = current->signal;
	INIT_LIST_HEAD(&fam->mms);
	spin_lock_init(&fam->mms_lock);
	refcount_set(&fam->refs, 1);
	fam->registry = registry;
	mm->mmview_id = 0;
	spin_lock(&fam->mms_lock);
	list_add(&mm->mmview_node, &fam->mms);
	WRITE_ONCE(mm->mmview_family, fam);
	spin_unlock(&fam->mms_lock);
	/*
	 * Faults that started under a per-VMA lock finish before this
	 * returns; later ones see the family and take the mmap_lock.
	 */
	vma_iter_set(&vmi, 0);
	for_each_vma(vmi, vma)
		vma_start_write(vma);
	return fam;
}

/*
 * Drop one reference on @fam; the last frees it, and with it the pins on
 * the lock owner and the base. Locks: none needed.
 */
static void mmview_family_put(struct mmview_family *fam)
{
	if (!refcount_dec_and_test(&fam->refs))
		return;
	WARN_ON_ONCE(fam->registry);
	mmdrop(fam->base);
	mmdrop(fam->owner);
	kfree(fam);
}

/**
 * mmview_family_destroy_locked - undo mmview_family_create_locked() when
 * its first view could not be made
 * @mm: the family's lock owner, its only member
 *
 * Locks: @mm's mmap_lock held for writing; @mm is the caller's own mm.
 */
void mmview_family_destroy_locked(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	mmap_assert_write_locked(mm);
	if (WARN_ON_ONCE(!fam || fam->owner != mm || !list_is_singular(&fam->mms)))
		return;
	spin_lock(&fam->mms_lock);
	list_del_init(&mm->mmview_node);
	WRITE_ONCE(mm->mmview_family, NULL);
	spin_unlock(&fam->mms_lock);
	/* The caller's thread holds @mm: not the last reference. */
	mmput(mm);
	/*
	 * A half-built first view (mmview_dup_mm() failed, a fatal signal or
	 * no memory) is still a member and holds a reference: it frees the
	 * family when its teardown ends (mmview_mm_put()).
	 */
	mmview_family_put(fam);
}

/**
 * mmview_add_view_locked - put @view, from mmview_dup_mm(), on the family's
 * member list, with its id
 * @view: the new view
 * @id: its id
 *
 * The family keeps the reference @view was created with.
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_add_view_locked(struct mm_struct *view, u64 id)
{
	struct mmview_family *fam = mmview_family(mmap_lock_mm(view));

	mmap_assert_write_locked(view);
	VM_WARN_ON_ONCE(mmview_family(view) != fam);
	view->mmview_id = id;
	spin_lock(&fam->mms_lock);
	list_add_tail(&view->mmview_node, &fam->mms);
#ifdef CONFIG_MEMBARRIER
	/* A registration made since the view was copied (it takes mms_lock). */
	atomic_or(atomic_read(&fam->owner->membarrier_state),
		  &view->membarrier_state);
#endif
	spin_unlock(&fam->mms_lock);
}

/**
 * mmview_put_view - drop the family's reference on a view
 * @mm: the view
 *
 * Locks: none (the last reference tears @mm down under the family's lock).
 */
void mmview_put_view(struct mm_struct *mm)
{
	mmput(mm);
}

/**
 * mmview_task_enter - the calling thread is about to migrate into @mm
 * @mm: a live view of the caller's family
 *
 * Locks: the family's mmap_lock held, so @mm cannot be deleted meanwhile.
 */
void mmview_task_enter(struct mm_struct *mm)
{
	mmap_assert_locked(mm);
	mmget(mm);
	if (mm != mmview_family(mm)->owner)
		atomic_inc(&mm->mmview_tasks);
}

/**
 * mmview_clone_vm_check - copy_mm(): may @mm get a CLONE_VM child outside
 * its thread group?
 * @mm: the creator's mm
 * @clone_flags: the clone flags, with CLONE_VM
 *
 * Views are released when their thread group exits or execs: a process
 * sharing a view with another thread group would lose its shared memory
 * then. Such children are refused in a process with views, and a process
 * that has one cannot create views (MMF_MULTIPROCESS, set here under the
 * mmap_lock so that a racing first MMVIEW_CREATE sees it). vfork()
 * children (CLONE_VFORK) are allowed: their parent waits until they exec
 * or exit.
 *
 * Locks: none held; takes the mmap_lock for reading.
 *
 * Return: 0, -EOPNOTSUPP, or -EINTR on a fatal signal.
 */
int mmview_clone_vm_check(struct mm_struct *mm, unsigned long clone_flags)
{
	int err = 0;

	if (clone_flags & (CLONE_THREAD | CLONE_VFORK))
		return 0;
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	if (mmview_family(mm))
		err = -EOPNOTSUPP;
	else
		set_bit(MMF_MULTIPROCESS, &mm->flags);
	mmap_read_unlock(mm);
	return err;
}

/**
 * mmview_task_join - copy_mm(): a CLONE_VM child starts in its creator's mm
 * @mm: the creator's mm
 * @clone_flags: the clone flags
 *
 * Locks: none. A view's count cannot be 0 here: the creator is in it.
 */
void mmview_task_join(struct mm_struct *mm, unsigned long clone_flags)
{
	struct mmview_family *fam = mmview_family(mm);

	if (fam && mm != fam->owner)
		atomic_inc(&mm->mmview_tasks);
}

/**
 * mmview_task_leave - a task no longer uses @mm (MIGRATE away, exit, exec,
 * a failed clone)
 * @mm: the mm the task was in; the caller still holds its reference
 *
 * Locks: none; may sleep.
 */
void mmview_task_leave(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	if (!fam || mm == fam->owner)
		return;
	if (atomic_dec_and_test(&mm->mmview_tasks))
		mmview_rs_view_idle(mm);
}

/*
 * Whether a thread of current's group other than current still uses a
 * member of @fam. Every thread clears its ->mm under task_lock() in
 * exit_mm() before it calls mmview_task_exit(), so of threads exiting
 * together at least the last to clear sees none (more may: the release
 * is idempotent). Locks: none held; takes each thread's task_lock.
 */
static bool mmview_group_uses_family(struct mmview_family *fam)
{
	struct task_struct *t;
	bool used = false;

	rcu_read_lock();
	for_each_thread(current, t) {
		struct mm_struct *m;

		if (t == current)
			continue;
		task_lock(t);
		m = t->mm;
		used = m && mmview_family(m) == fam;
		task_unlock(t);
		if (used)
			break;
	}
	rcu_read_unlock();
	return used;
}

/**
 * mmview_task_exit - exit_mm() and exec_mmap(): current has left @mm
 * @mm: the mm current was in; current still holds its reference
 *
 * When the family's thread group has no thread left (exit), or is about to
 * run a new program (exec, after de_thread()), every view is released.
 *
 * Locks: none; may sleep.
 */
void mmview_task_exit(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	if (!fam)
		return;
	mmview_task_leave(mm);
	if (current->signal != fam->signal)
		return;
	/*
	 * exec (current->mm is the new one), or the last thread of the group
	 * to leave its mm: the others may still use their views on their way
	 * out (robust futex lists, clear_child_tid) after signal->live fell
	 * to 0.
	 */
	if (current->mm || (!atomic_read(&current->signal->live) &&
			    !mmview_group_uses_family(fam)))
		mmview_rs_family_release(fam);
}

/**
 * mmview_mm_unlink - __mmput(): @mm leaves its family's member list
 * @mm: the mm being torn down
 *
 * Locks: none held; takes the family's mmap_lock for writing.
 */
void mmview_mm_unlink(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	if (!fam)
		return;
	mmap_write_lock(mm);
	spin_lock(&fam->mms_lock);
	list_del_init(&mm->mmview_node);
	spin_unlock(&fam->mms_lock);
	mmap_write_unlock(mm);
}

/**
 * mmview_mm_put - end of __mmput(): drop @mm's reference on its family
 * @mm: the torn-down mm
 *
 * The last member frees the family, and with it the pins on the lock owner
 * and the base.
 *
 * Locks: none.
 */
void mmview_mm_put(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	if (fam)
		mmview_family_put(fam);
}

/**
 * mmview_update_owner - mm_update_next_owner() for a family member
 * @mm: a member whose memcg owner, current, exits or execs
 *
 * All members have one owner: a thread of the family's thread group that
 * still uses a member, or none.
 *
 * Locks: none held (current has already left @mm).
 *
 * Return: whether @mm is in a family (and its owner was updated).
 */
bool mmview_update_owner(struct mm_struct *mm)
{
#ifdef CONFIG_MEMCG
	struct mmview_family *fam = mmview_family(mm);
	struct task_struct *t, *new = NULL;
	struct mm_struct *m;

	if (!fam)
		return false;
	rcu_read_lock();
	for_each_thread(current, t) {
		if (t == current || (t->flags & PF_EXITING))
			continue;
		task_lock(t);
		/* Under task_lock: t's exit_mm() has not left its mm yet. */
		if (t->mm && mmview_family(t->mm) == fam) {
			new = t;
			break;
		}
		task_unlock(t);
	}
	spin_lock(&fam->mms_lock);
	list_for_each_entry(m, &fam->mms, mmview_node)
		if (m->owner == current)
			WRITE_ONCE(m->owner, new);
	spin_unlock(&fam->mms_lock);
	if (new)
		task_unlock(new);
	rcu_read_unlock();
	return true;
#else
	return false;
#endif
}

/* The threads of @leader's group whose mm is @mm. Locks: none needed. */
static u64 mmview_threads_in(struct task_struct *leader, struct mm_struct *mm)
{
	struct task_struct *t;
	u64 n = 0;

	rcu_read_lock();
	for_each_thread(leader, t)
		n += READ_ONCE(t->mm) == mm;
	rcu_read_unlock();
	return n;
}

/**
 * mmview_mm_in_use - whether a thread of the caller's thread group is in @mm
 * @mm: a member of the caller's family
 *
 * Views count their tasks (mmview_tasks); the lock owner does not (the
 * threads that were in it before its family formed were never counted), so
 * for it the thread group is searched.
 *
 * Locks: the family's mmap_lock, so that no thread migrates into @mm
 * meanwhile (one may leave: the answer is then conservative).
 */
bool mmview_mm_in_use(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	mmap_assert_locked(mm);
	if (!fam || mm != fam->owner)
		return atomic_read(&mm->mmview_tasks) > 0;
	return mmview_threads_in(current, mm) > 0;
}

/* ------------------------------------------------------------------------
 * Process-wide state: what a process has once is the same in every member.
 */

/**
 * mmview_sync_flags - bits of @mm->flags that are the process's changed:
 * give every other member the same bits
 * @mm: the member whose flags changed (set_dumpable(), prctl())
 * @mask: the bits (MMF_DUMPABLE_MASK, MMF_HAS_MDWE, MMF_DISABLE_THP, ...)
 *
 * Each call copies @mm's value as it is under the family's member lock, so
 * concurrent changes from two views leave every member with the value of
 * the last copy.
 *
 * Locks: none needed (takes the family's member spinlock); any context
 * that may take a spinlock.
 */
void mmview_sync_flags(struct mm_struct *mm, unsigned long mask)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	if (!fam)
		return;
	spin_lock(&fam->mms_lock);
	list_for_each_entry(sib, &fam->mms, mmview_node)
		if (sib != mm)
			set_mask_bits(&sib->flags, mask,
				      READ_ONCE(mm->flags) & mask);
	spin_unlock(&fam->mms_lock);
}

/**
 * mmview_sync_def_flags - mlockall() changed @mm->def_flags: give every
 * other member the same (MCL_FUTURE applies to mappings made from any view)
 * @mm: the calling thread's mm
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_sync_def_flags(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	if (!fam)
		return;
	mmap_assert_write_locked(mm);
	list_for_each_entry(sib, &fam->mms, mmview_node)
		sib->def_flags = mm->def_flags;
}

/**
 * mmview_sync_mm_fields - prctl(PR_SET_MM) changed @mm's description of its
 * layout: give every other member the same
 * @mm: the calling thread's mm
 *
 * The code, data, heap, stack, argument and environment bounds and the
 * saved auxiliary vector (what /proc/pid/stat, cmdline, environ and auxv
 * show) are the process's.
 *
 * Locks: none needed (takes the family's member spinlock and each member's
 * arg_lock).
 */
void mmview_sync_mm_fields(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	if (!fam)
		return;
	spin_lock(&fam->mms_lock);
	list_for_each_entry(sib, &fam->mms, mmview_node) {
		if (sib == mm)
			continue;
		spin_lock(&sib->arg_lock);
		sib->start_code = mm->start_code;
		sib->end_code = mm->end_code;
		sib->start_data = mm->start_data;
		sib->end_data = mm->end_data;
		sib->start_brk = mm->start_brk;
		sib->brk = mm->brk;
		sib->start_stack = mm->start_stack;
		sib->arg_start = mm->arg_start;
		sib->arg_end = mm->arg_end;
		sib->env_start = mm->env_start;
		sib->env_end = mm->env_end;
		memcpy(sib->saved_auxv, mm->saved_auxv, sizeof(sib->saved_auxv));
		spin_unlock(&sib->arg_lock);
	}
	spin_unlock(&fam->mms_lock);
}

/* See mmview_mm_same(). Locks: none needed; takes the member spinlock. */
bool __mmview_is_member(struct mm_struct *mm, const struct mm_struct *other)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;
	bool member = false;

	if (!other || !fam)
		return false;
	spin_lock(&fam->mms_lock);
	list_for_each_entry(sib, &fam->mms, mmview_node) {
		if (sib == other) {
			member = true;
			break;
		}
	}
	spin_unlock(&fam->mms_lock);
	return member;
}

#ifdef CONFIG_MEMBARRIER
/**
 * mmview_membarrier_or - membarrier() registered @mm: register every member
 * @mm: the calling thread's mm
 * @bits: the MEMBARRIER_STATE_* bits to set
 *
 * Registration is the process's: expedited barriers issued from any view
 * reach the threads of every view (see mmview_mm_same() in
 * kernel/sched/membarrier.c).
 *
 * Locks: none needed (takes the family's member spinlock).
 */
void mmview_membarrier_or(struct mm_struct *mm, int bits)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	atomic_or(bits, &mm->membarrier_state);
	if (!fam)
		return;
	spin_lock(&fam->mms_lock);
	list_for_each_entry(sib, &fam->mms, mmview_node)
		atomic_or(bits, &sib->membarrier_state);
	spin_unlock(&fam->mms_lock);
}
#endif

/**
 * mmview_sync_pkeys - @mm allocated or freed a protection key: give every
 * other member the same allocation map
 * @mm: the calling thread's mm
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_sync_pkeys(struct mm_struct *mm)
{
#ifdef CONFIG_ARCH_HAS_PKEYS
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	if (!fam)
		return;
	mmap_assert_write_locked(mm);
	list_for_each_entry(sib, &fam->mms, mmview_node) {
		mm_pkey_allocation_map(sib) = mm_pkey_allocation_map(mm);
#ifdef CONFIG_X86
		sib->context.execute_only_pkey = mm->context.execute_only_pkey;
#endif
	}
#endif
}

/**
 * mmview_futex_mm - the mm that names a private futex of @mm at @address
 * @mm: the calling thread's mm
 * @address: the futex word's address
 *
 * A futex in shared memory is one futex for all views: it is named by the
 * family's lock owner, fixed for the family's life. In unshared memory each
 * view's copy is its own futex, named by the view.
 *
 * Locks: none held; with CONFIG_PER_VMA_LOCK (VMAs freed by RCU) an RCU
 * walk of the maple tree, else the mmap_lock for reading (may sleep).
 *
 * Return: the mm for the futex key.
 */
struct mm_struct *mmview_futex_mm(struct mm_struct *mm, unsigned long address)
{
	struct vm_area_struct *vma;
	bool unshared;

	if (!mmview_family(mm))
		return mm;
#ifdef CONFIG_PER_VMA_LOCK
	{
		MA_STATE(mas, &mm->mm_mt, address, address);

		/*
		 * Without the mmap_lock, which writers hold long (every futex
		 * operation would wait behind mmap() and munmap() of any view):
		 * VMAs are freed after an RCU grace period, and the
		 * designation of an address changes only while the process has
		 * one view (a mapping split or merged meanwhile keeps it).
		 */
		rcu_read_lock();
		vma = mas_walk(&mas);
		unshared = vma && !xa_is_zero(vma) &&
			   (READ_ONCE(vma->vm_flags) & VM_MMVIEW_UNSHARED);
		rcu_read_unlock();
	}
#else
	mmap_read_lock(mm);
	vma = vma_lookup(mm, address);
	unshared = vma && (vma->vm_flags & VM_MMVIEW_UNSHARED);
	mmap_read_unlock(mm);
#endif
	return unshared ? mm : mmap_lock_mm(mm);
}

/* ------------------------------------------------------------------------
 * Per-view figures: MMVIEW_STAT and /proc/<pid>/mmviews.
 */

struct mmview_resident {
	u64 shared;
	u64 unshared;
};

/* Adds @bytes to the bucket of @walk->vma's designation. */
static void mmview_resident_add(struct mm_walk *walk, u64 bytes)
{
	struct mmview_resident *res = walk->private;

	if (walk->vma->vm_flags & VM_MMVIEW_UNSHARED)
		res->unshared += bytes;
	else
		res->shared += bytes;
}

static int mmview_resident_pmd(pmd_t *pmd, unsigned long addr,
			       unsigned long next, struct mm_walk *walk)
{
	spinlock_t *ptl;	/* the PMD's lock */

	ptl = pmd_trans_huge_lock(pmd, walk->vma);
	if (ptl) {
		if (pmd_present(*pmd) && !is_huge_zero_pmd(*pmd))
			mmview_resident_add(walk, next - addr);
		spin_unlock(ptl);
		walk->action = ACTION_CONTINUE;
	}
	return 0;
}

static int mmview_resident_pte(pte_t *pte, unsigned long addr,
			       unsigned long next, struct mm_walk *walk)
{
	pte_t entry = ptep_get(pte);

	if (pte_present(entry) && vm_normal_page(walk->vma, addr, entry))
		mmview_resident_add(walk, PAGE_SIZE);
	return 0;
}

#ifdef CONFIG_HUGETLB_PAGE
static int mmview_resident_hugetlb(pte_t *pte, unsigned long hmask,
				   unsigned long addr, unsigned long next,
				   struct mm_walk *walk)
{
	pte_t entry = huge_ptep_get(walk->mm, addr, pte);

	if (pte_present(entry))
		mmview_resident_add(walk, next - addr);
	return 0;
}
#endif

static const struct mm_walk_ops mmview_resident_ops = {
	.pmd_entry	= mmview_resident_pmd,
	.pte_entry	= mmview_resident_pte,
#ifdef CONFIG_HUGETLB_PAGE
	.hugetlb_entry	= mmview_resident_hugetlb,
#endif
	.walk_lock	= PGWALK_RDLOCK,
};

/**
 * mmview_stat_fill - the figures of one view
 * @mm: the view (a member of a family, or an mm without one)
 * @state: its MMVIEW_STAT_* state, from the registry
 * @task: a thread of the process, whose group is counted
 * @st: filled but for @st->size
 *
 * Locks: @mm's (the family's) mmap_lock held for reading; walks @mm's page
 * tables.
 */
void mmview_stat_fill(struct mm_struct *mm, u64 state, struct task_struct *task,
		      struct mmview_stat *st)
{
	struct mmview_resident res = { };

	mmap_assert_locked(mm);
	walk_page_range(mm, 0, TASK_SIZE, &mmview_resident_ops, &res);
	st->state = state;
	st->threads = mmview_threads_in(task, mm);
	st->shared_bytes = res.shared;
	st->unshared_bytes = res.unshared;
	st->pgtable_bytes = mm_pgtables_bytes(mm);
	st->cow_faults = atomic_long_read(&mm->mmview_cow_faults);
}

/**
 * mmview_stat_copy_out - copy @st to the caller's struct mmview_stat
 * @buf: the caller's struct, whose first field is its size
 * @st: the figures
 *
 * As openat2() reads its struct, the other way: the caller's size must be
 * at least MMVIEW_STAT_SIZE_VER0 and at most a page; past the kernel's
 * struct, the caller's bytes must be zero (they stay so).
 *
 * Locks: none held (may fault).
 *
 * Return: 0, -EINVAL, -E2BIG or -EFAULT.
 */
int mmview_stat_copy_out(void __user *buf, const struct mmview_stat *st)
{
	struct mmview_stat out = *st;
	u64 usize;
	int ret;

	if (get_user(usize, (u64 __user *)buf))
		return -EFAULT;
	if (usize < MMVIEW_STAT_SIZE_VER0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	if (usize > sizeof(out)) {
		ret = check_zeroed_user(buf + sizeof(out), usize - sizeof(out));
		if (ret < 0)
			return ret;
		if (!ret)
			return -E2BIG;
	}
	out.size = usize;
	if (copy_to_user(buf, &out, min_t(u64, usize, sizeof(out))))
		return -EFAULT;
	return 0;
}

/* One line of /proc/<pid>/mmviews. */
static void mmview_proc_line(struct seq_file *m, u64 id,
			     const struct mmview_stat *st)
{
	seq_printf(m, "%llu %s %s %llu %llu %llu %llu %llu\n", id,
		   st->state & MMVIEW_STAT_DELETED ? "deleted" : "live",
		   st->state & MMVIEW_STAT_BASE ? "base" : "-", st->threads,
		   st->shared_bytes >> 10, st->unshared_bytes >> 10,
		   st->pgtable_bytes >> 10, st->cow_faults);
}

/**
 * mmview_proc_show - /proc/<pid>/mmviews: a header, then a line per view
 * @m: the seq_file
 * @mm: the mm of @task (mm_access() checked the reader's ptrace rights)
 * @task: the process's task
 *
 * Locks: none held; takes the family's mmap_lock for reading.
 *
 * Return: 0 or -EINTR.
 */
int mmview_proc_show(struct seq_file *m, struct mm_struct *mm,
		     struct task_struct *task)
{
	struct mmview_family *fam;
	struct mmview_stat st;
	struct mm_struct *sib;

	seq_puts(m, "id state base threads shared_kB unshared_kB pgtables_kB cow_faults\n");
	if (mmap_read_lock_killable(mm))
		return -EINTR;
	fam = mmview_family(mm);
	if (!fam) {
		mmview_stat_fill(mm, MMVIEW_STAT_BASE, task, &st);
		mmview_proc_line(m, MMVIEW_BASE_ID, &st);
	} else {
		list_for_each_entry(sib, &fam->mms, mmview_node) {
			mmview_stat_fill(sib, mmview_rs_view_state(sib), task,
					 &st);
			mmview_proc_line(m, sib->mmview_id, &st);
		}
	}
	mmap_read_unlock(mm);
	return 0;
}

/* ------------------------------------------------------------------------
 * Switching the calling thread between views.
 */

/**
 * mmview_switch_mm - make @new the calling thread's address space
 * @new: a member of the caller's family, referenced for the caller by
 *	mmview_task_enter()
 *
 * As exec_mmap() and kthread_use_mm() do: the mm_cid is released in the
 * old mm and taken in the new one (rseq is told), membarrier follows the
 * thread, and the page-table root is switched with interrupts off.
 * deactivate_mm()/activate_mm() are not used: the thread keeps its
 * user-space state (x86 shadow stack, FS/GS).
 *
 * Locks: none held; may sleep (not inside).
 *
 * Return: the previous mm, whose reference passes to the caller.
 */
struct mm_struct *mmview_switch_mm(struct mm_struct *new)
{
	struct task_struct *tsk = current;
	struct mm_struct *old = tsk->mm;

	sched_mm_cid_before_execve(tsk);
	task_lock(tsk);
	/* Order user accesses before the switch, for membarrier. */
	smp_mb__after_spinlock();
	local_irq_disable();
	tsk->active_mm = new;
	tsk->mm = new;
	membarrier_update_current_mm(new);
	switch_mm_irqs_off(old, new, tsk);
	local_irq_enable();
	task_unlock(tsk);
	lru_gen_use_mm(new);
	sched_mm_cid_after_execve(tsk);
	return old;
}

/* ------------------------------------------------------------------------
 * Page tables: a view's PTEs are copies of the base's.
 */

/*
 * Remove one PTE of a view: a copy of the base's, a stale copy, or a
 * non-present entry (hwpoison; swap and migration entries are not left in
 * a view's shared mappings since reclaim and migration drop the view's
 * copy instead, see try_to_unmap_one(), but are handled all the same).
 *
 * Locks: the family's mmap_lock and the PTL of @pte.
 */
static void mmview_clear_pte_locked(struct vm_area_struct *vma,
				    unsigned long addr, pte_t *pte, pte_t entry)
{
	struct mm_struct *mm = vma->vm_mm;
	swp_entry_t swp;

	if (pte_present(entry)) {
		struct page *page = vm_normal_page(vma, addr, entry);

		entry = ptep_clear_flush(vma, addr, pte);
		if (page) {
			struct folio *folio = page_folio(page);

			if (pte_dirty(entry))
				folio_mark_dirty(folio);
			folio_remove_rmap_pte(folio, page, vma);
			dec_mm_counter(mm, mm_counter(folio));
			/* After the TLB flush: the page may go now. */
			folio_put(folio);
		}
		return;
	}
	swp = pte_to_swp_entry(entry);
	if (!non_swap_entry(swp)) {
		free_swap_and_cache(swp);
		dec_mm_counter(mm, MM_SWAPENTS);
	} else if (is_migration_entry(swp)) {
		dec_mm_counter(mm, mm_counter(pfn_swap_entry_folio(swp)));
	}
	pte_clear(mm, addr, pte);
}

/*
 * Install @entry, a present PTE of @src_vma at @addr, as @dst_vma's PTE at
 * @dst_pte, with the page's reference, mapcount and RSS (PageAnonExclusive
 * is kept: the page is exclusive to the family, whose members all map it at
 * the same address). No folio lock is needed: @src_vma's PTL is held, so
 * the page stays mapped, as in fork.
 *
 * Locks: the family's mmap_lock, @src_vma's PTL for @addr and @dst's,
 * nested.
 */
static void mmview_copy_pte_locked(struct vm_area_struct *src_vma,
				   struct vm_area_struct *dst_vma,
				   unsigned long addr, pte_t *dst_pte,
				   pte_t entry)
{
	struct mm_struct *dst = dst_vma->vm_mm;
	struct page *page = vm_normal_page(src_vma, addr, entry);

	if (page) {
		struct folio *folio = page_folio(page);

		folio_get(folio);
		/* Mapcount only: PageAnonExclusive stays, see above. */
		folio_dup_file_rmap_pte(folio, page);
		/* Balances the munlock of folio_remove_rmap_pte() later. */
		mlock_vma_folio(folio, dst_vma);
		inc_mm_counter(dst, mm_counter(folio));
	}
	set_pte_at(dst, addr, dst_pte, entry);
}

/**
 * mmview_zap_siblings_locked - the base replaces the page at @addr: remove
 * every other member's copy of the PTE
 * @vma: the base's mapping (mmview_vma_is_master())
 * @addr: the address
 *
 * Called between the clear and the set of the base's PTE, so no view can
 * copy the old PTE again (mmview_sync_pte() needs the base's PTL).
 * Unshared mappings of other members are skipped: they map the old page as
 * copy-on-write sharers, legitimately.
 *
 * Locks: the family's mmap_lock (keeps the members and their page tables),
 * the base's PTL for @addr; takes each member's PTL nested.
 */
void mmview_zap_siblings_locked(struct vm_area_struct *vma, unsigned long addr)
{
	addr &= PAGE_MASK;
	mmview_zap_siblings_range_locked(vma, addr, addr + PAGE_SIZE);
}

/**
 * mmview_zap_siblings_range_locked - the base dropped its PTEs over
 * [@start, @end): remove every other member's copies there
 * @vma: the base's mapping (mmview_vma_is_master())
 * @start: page-aligned start
 * @end: page-aligned end, in the same page table as @start
 *
 * zap_pte_range() calls this before it drops the base's PTL, so no view
 * can copy a dropped PTE again (mmview_sync_pte() needs that PTL): the
 * views' copies go with the base's, for MADV_DONTNEED, munmap() and every
 * other zap made under the family's mmap_lock. Unshared mappings of other
 * members are skipped (their pages are their own).
 *
 * Locks: the family's mmap_lock (keeps the members and their page tables),
 * the base's PTL for the range; takes each member's PTL nested.
 */
void mmview_zap_siblings_range_locked(struct vm_area_struct *vma,
				      unsigned long start, unsigned long end)
{
	struct mmview_family *fam = mmview_family(vma->vm_mm);
	struct mm_struct *sib;

	mmap_assert_locked(vma->vm_mm);
	list_for_each_entry(sib, &fam->mms, mmview_node) {
		struct vm_area_struct *svma;
		unsigned long addr = start;

		if (sib == vma->vm_mm)
			continue;
		while (addr < end) {
			unsigned long e;
			spinlock_t *ptl;	/* the member's PTL for @addr */
			pte_t *pte, *start_pte;
			pmd_t *pmd;

			svma = find_vma_intersection(sib, addr, end);
			if (!svma)
				break;
			addr = max(addr, svma->vm_start);
			e = min(end, svma->vm_end);
			if (!mmview_flags_synced(svma->vm_flags))
				goto next;
			pmd = mm_find_pmd(sib, addr);
			if (!pmd)
				goto next;
			start_pte = pte_offset_map_nolock(sib, pmd, addr, &ptl);
			if (!start_pte)
				goto next;
			pte = start_pte;
			spin_lock_nested(ptl, SINGLE_DEPTH_NESTING);
			for (; addr < e; addr += PAGE_SIZE, pte++) {
				pte_t entry = ptep_get(pte);

				if (!pte_none(entry))
					mmview_clear_pte_locked(svma, addr, pte,
								entry);
			}
			spin_unlock(ptl);
			pte_unmap(start_pte);
next:
			addr = e;
		}
	}
}

/**
 * mmview_dump_from_base - whether a core dump must fault a view's empty PTE
 * @vma: the view's mapping, anonymous (get_dump_page(), FOLL_DUMP)
 * @addr: the address
 *
 * A view's shared memory fills from the base on demand: the page is no
 * hole if the base has one there (present and not the zero page, or
 * swapped out). Where the base has nothing, the dump leaves a hole without
 * faulting, as without views (a sparse reservation is not populated).
 *
 * Locks: the family's mmap_lock held for reading.
 *
 * Return: true to fault the page in through the view.
 */
bool mmview_dump_from_base(struct vm_area_struct *vma, unsigned long addr)
{
	struct mm_struct *base;
	spinlock_t *ptl;	/* the base's PTL for @addr */
	pte_t *pte, entry;
	pmd_t *pmd;

	if (!mmview_vma_synced(vma))
		return false;
	base = mmview_family(vma->vm_mm)->base;
	pmd = mm_find_pmd(base, addr);
	if (!pmd)
		return false;
	pte = pte_offset_map_lock(base, pmd, addr, &ptl);
	if (!pte)
		return false;
	entry = ptep_get(pte);
	pte_unmap_unlock(pte, ptl);
	if (pte_none(entry))
		return false;
	return !pte_present(entry) || !is_zero_pfn(pte_pfn(entry));
}

/* The PMD of @mm for @addr, allocating the levels above it. May sleep. */
static pmd_t *mmview_pmd_alloc(struct mm_struct *mm, unsigned long addr)
{
	pgd_t *pgd = pgd_offset(mm, addr);
	p4d_t *p4d;
	pud_t *pud;

	p4d = p4d_alloc(mm, pgd, addr);
	if (!p4d)
		return NULL;
	pud = pud_alloc(mm, p4d, addr);
	if (!pud)
		return NULL;
	return pmd_alloc(mm, pud, addr);
}

/*
 * Whether a view may take the base's read-only @bentry for a write fault
 * that needs no writable PTE: a forced write (FOLL_FORCE: ptrace, /proc/pid/mem)
 * into a mapping without VM_WRITE, or FAULT_FLAG_UNSHARE (a pin). GUP then
 * writes or pins through the PTE if the page is an exclusive anonymous page
 * (see can_follow_write_pte() and gup_must_unshare()); otherwise the base
 * must break copy-on-write first, as the same fault would without views.
 *
 * Locks: the base's PTL for @addr.
 */
static bool mmview_can_take_readonly(struct vm_area_struct *bvma,
				     unsigned long addr, pte_t bentry,
				     bool need_write)
{
	struct page *page;

	if (need_write)
		return false;
	page = vm_normal_page(bvma, addr, bentry);
	return page && PageAnon(page) && PageAnonExclusive(page);
}

/**
 * mmview_sync_pte - serve a view's fault on a shared private mapping from
 * the base
 * @vma: the view's mapping (mmview_vma_synced())
 * @addr: the faulting address
 * @flags: the fault flags
 *
 * Copies the base's PTE into the view, with the page's reference, mapcount
 * and RSS (PageAnonExclusive is kept: the page is exclusive to the family,
 * whose members all map it at the same address), or upgrades the view's
 * read-only copy when the base's is writable.
 *
 * Locks: the family's mmap_lock held for reading; takes the base's PTL and
 * then the view's, nested (the order of mmview_zap_siblings_locked()).
 *
 * Return: 0 when the access can be retried, VM_FAULT_MMVIEW_BASE when the
 * base must fault first (no page, not present, or read-only for a write),
 * or an error.
 */
vm_fault_t mmview_sync_pte(struct vm_area_struct *vma, unsigned long addr,
			   unsigned int flags)
{
	const bool write = flags & (FAULT_FLAG_WRITE | FAULT_FLAG_UNSHARE);
	/* A store the view's mapping allows: the PTE must become writable. */
	const bool need_write = (flags & FAULT_FLAG_WRITE) &&
				(vma->vm_flags & VM_WRITE);
	struct mm_struct *mm = vma->vm_mm;
	struct mm_struct *base = mmview_family(mm)->base;
	struct vm_area_struct *bvma;
	spinlock_t *ptl, *bptl;
	pte_t *pte, *bpte;
	pte_t entry, bentry;
	pmd_t *pmd, *bpmd;
	vm_fault_t ret = 0;

	addr &= PAGE_MASK;
	bvma = vma_lookup(base, addr);
	if (!bvma)
		return VM_FAULT_SIGSEGV;
	/* Same pages at the same addresses need the same rmap identity. */
	if (bvma->anon_vma != vma->anon_vma ||
	    linear_page_index(bvma, addr) != linear_page_index(vma, addr))
		return VM_FAULT_SIGBUS;

	/* The view's page table first: no allocation under the PTLs. */
	pmd = mmview_pmd_alloc(mm, addr);
	if (!pmd || pte_alloc(mm, pmd))
		return VM_FAULT_OOM;

	bpmd = mm_find_pmd(base, addr);
	if (!bpmd)
		return VM_FAULT_MMVIEW_BASE;
	bpte = pte_offset_map_lock(base, bpmd, addr, &bptl);
	if (!bpte)
		return VM_FAULT_MMVIEW_BASE;
	bentry = ptep_get(bpte);
	if (!pte_present(bentry) ||
	    (pte_protnone(bentry) && vma_is_accessible(bvma)) ||
	    (write && !pte_write(bentry) &&
	     !mmview_can_take_readonly(bvma, addr, bentry, need_write))) {
		ret = VM_FAULT_MMVIEW_BASE;
		goto unlock_base;
	}
	pte = pte_offset_map_nolock(mm, pmd, addr, &ptl);
	if (!pte)
		goto unlock_base;
	spin_lock_nested(ptl, SINGLE_DEPTH_NESTING);
	entry = ptep_get(pte);
	if (pte_present(entry) && pte_pfn(entry) == pte_pfn(bentry)) {
		/*
		 * The view has the base's page: make it young, and dirty and
		 * writable for a write (the base's is writable then), as
		 * handle_pte_fault() does for a present PTE.
		 */
		if (need_write)
			entry = pte_mkdirty(pte_mkwrite(entry, vma));
		else if (write && !(flags & FAULT_FLAG_UNSHARE))
			entry = pte_mkdirty(entry);
		entry = pte_mkyoung(entry);
		/* dirty: x86 writes the entry back only then. */
		if (ptep_set_access_flags(vma, addr, pte, entry,
					  write && !(flags & FAULT_FLAG_UNSHARE)))
			update_mmu_cache_range(NULL, vma, addr, pte, 1);
		else if (need_write)
			flush_tlb_fix_spurious_fault(vma, addr, pte);
		goto unlock;
	}
	if (!pte_present(entry) && !pte_none(entry) &&
	    is_migration_entry(pte_to_swp_entry(entry))) {
		/* Wait for the migration, then fault again. */
		spin_unlock(ptl);
		pte_unmap(pte);
		pte_unmap_unlock(bpte, bptl);
		migration_entry_wait(mm, pmd, addr);
		return 0;
	}
	if (!pte_none(entry))
		mmview_clear_pte_locked(vma, addr, pte, entry);
	entry = pte_mkyoung(bentry);
	if (write && !(flags & FAULT_FLAG_UNSHARE))
		entry = pte_mkdirty(entry);
	/* No more permission than the view's own mapping gives. */
	if (!(vma->vm_flags & VM_WRITE))
		entry = pte_wrprotect(entry);
	mmview_copy_pte_locked(bvma, vma, addr, pte, entry);
	update_mmu_cache_range(NULL, vma, addr, pte, 1);
unlock:
	spin_unlock(ptl);
	pte_unmap(pte);
unlock_base:
	pte_unmap_unlock(bpte, bptl);
	return ret;
}

/*
 * Drop the pages of @mm's mappings in [@start, @end), but for mappings with
 * any of @skip in their flags (the mappings stay).
 *
 * Locks: the family's mmap_lock held (for reading is enough).
 */
static void mmview_zap_range(struct mm_struct *mm, unsigned long start,
			     unsigned long end, vm_flags_t skip)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma;

	mmap_assert_locked(mm);
	vma_iter_init(&vmi, mm, start);
	for_each_vma_range(vmi, vma, end) {
		if (vma->vm_flags & skip)
			continue;
		zap_page_range_single(vma, max(start, vma->vm_start),
				      min(end, vma->vm_end) -
				      max(start, vma->vm_start), NULL);
	}
}

/* Write-protect one PTE of a view (pagewalk callback, PTL held). */
static int mmview_wrprotect_pte(pte_t *pte, unsigned long addr,
				unsigned long next, struct mm_walk *walk)
{
	pte_t entry = ptep_get(pte);

	if (pte_present(entry) && pte_write(entry)) {
		ptep_set_wrprotect(walk->mm, addr, pte);
		*(bool *)walk->private = true;
	}
	return 0;
}

static const struct mm_walk_ops mmview_wrprotect_ops = {
	.pte_entry	= mmview_wrprotect_pte,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * Write-protect @mm's copies of the base's PTEs (its shared private
 * mappings), with mmu-notifier ranges and TLB flushes.
 *
 * Locks: the family's mmap_lock held for writing; the walk takes the PTLs.
 */
static void mmview_wrprotect_synced(struct mm_struct *mm)
{
	struct mmu_notifier_range range;
	struct vm_area_struct *vma;
	struct vma_iterator vmi;
	bool flush;

	vma_iter_init(&vmi, mm, 0);
	for_each_vma(vmi, vma) {
		if (!mmview_flags_synced(vma->vm_flags))
			continue;
		flush = false;
		mmu_notifier_range_init(&range, MMU_NOTIFY_PROTECTION_PAGE, 0,
					mm, vma->vm_start, vma->vm_end);
		mmu_notifier_invalidate_range_start(&range);
		walk_page_range_vma(vma, vma->vm_start, vma->vm_end,
				    &mmview_wrprotect_ops, &flush);
		if (flush)
			flush_tlb_range(vma, vma->vm_start, vma->vm_end);
		mmu_notifier_invalidate_range_end(&range);
	}
}

/**
 * mmview_fork_prepare - dup_mmap(): fork() of a family member
 * @mm: the forking mm
 *
 * Write-protects every view's copies of the base's PTEs, so that once
 * fork() has write-protected the base's pages that it shares with the
 * child, no member keeps a writable mapping of them: a store in a view
 * then faults, and the base copies the page (mmview_sync_pte(), whose
 * caller has the base fault first; the base's copy-on-write removes the
 * views' copies of the old page) or, once the child no longer maps it,
 * reuses it (the view's copy is made writable again). The views keep their
 * mappings. The child's copy of a view's shared private mappings is taken
 * from the base (mmview_copy_page_range()).
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_fork_prepare(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	if (!fam)
		return;
	mmap_assert_write_locked(mm);
	list_for_each_entry(sib, &fam->mms, mmview_node) {
		if (sib == fam->base)
			continue;
		/*
		 * A page pinned through a view is the base's page too: fork()
		 * must copy it for the child, not share it (see
		 * folio_needs_cow_for_dma(), which looks at the base).
		 */
		if (test_bit(MMF_HAS_PINNED, &sib->flags))
			set_bit(MMF_HAS_PINNED, &fam->base->flags);
		mmview_wrprotect_synced(sib);
	}
}

/**
 * mmview_fork_copy_begin - fork() copies the base's PTEs of a shared range
 * @mm: a family member
 *
 * The copy write-protects the base's PTEs and shares their pages with the
 * child. GUP-fast in the base backs off meanwhile (copy_page_range() holds
 * the base's write_protect_seq); this makes GUP-fast in every view back
 * off too, so that nobody pins a page while it becomes shared with the
 * child. End with mmview_fork_copy_end().
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_fork_copy_begin(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	mmap_assert_write_locked(mm);
	list_for_each_entry(sib, &fam->mms, mmview_node)
		if (sib != fam->base)
			raw_write_seqcount_begin(&sib->write_protect_seq);
	/*
	 * A GUP-fast pin through a view that finished before the views'
	 * write_protect_seq was raised (after mmview_fork_prepare() looked)
	 * set that view's MMF_HAS_PINNED before it read the sequence count:
	 * look again, or fork() would share the pinned page with the child
	 * (the copy checks the pin only if the base has the flag).
	 */
	smp_mb();
	list_for_each_entry(sib, &fam->mms, mmview_node)
		if (test_bit(MMF_HAS_PINNED, &sib->flags))
			set_bit(MMF_HAS_PINNED, &fam->base->flags);
}

/**
 * mmview_fork_copy_end - end what mmview_fork_copy_begin() began
 * @mm: the family member passed to it
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_fork_copy_end(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);
	struct mm_struct *sib;

	list_for_each_entry(sib, &fam->mms, mmview_node)
		if (sib != fam->base)
			raw_write_seqcount_end(&sib->write_protect_seq);
}

/* ------------------------------------------------------------------------
 * Layout replication: what munmap() and mmap() do to one member, they do
 * to all (mmview_rs_replicate() drives it over the registry).
 */

/**
 * mmview_try_munmap_one - take [@start, @end) out of one member
 * @mm: the member
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or -ENOMEM (the member is unchanged then; the caller tries
 * again, or drops the pages at least, see mmview_munmap_one()).
 */
int mmview_try_munmap_one(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	struct vma_iterator vmi;
	LIST_HEAD(uf);

	vma_iter_init(&vmi, mm, start);
	mmap_assert_write_locked(mm);
	return do_vmi_munmap(&vmi, mm, start, end - start, &uf, false);
}

/**
 * mmview_zap_all_one - drop every page of one member's mappings in
 * [@start, @end), whose mappings stay (mmview_try_munmap_one() failed)
 * @mm: the member
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * A view's shared private mappings then fault on the base, which has no
 * mapping there: SIGSEGV, as after an munmap().
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_zap_all_one(struct mm_struct *mm, unsigned long start,
			unsigned long end)
{
	mmap_assert_write_locked(mm);
	mmview_zap_range(mm, start, end, 0);
}

/**
 * mmview_munmap_one - take [@start, @end) out of one member, or at least
 * its pages
 * @mm: the member
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0, or -ENOMEM if the mappings stay (without their pages).
 */
int mmview_munmap_one(struct mm_struct *mm, unsigned long start,
		      unsigned long end)
{
	int err = mmview_try_munmap_one(mm, start, end);

	if (err)
		mmview_zap_all_one(mm, start, end);
	return err;
}

/*
 * Extend @dst's mapping that ends at @s over [@s, @e) if it can take @vma's
 * part there (same flags, file and offset, anon_vma, policy), as mmap() and
 * brk() extend the caller's: the members' mapping counts then stay the
 * caller's (a heap grown by brk() is one mapping in every member).
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: whether @dst now maps [@s, @e).
 */
static bool mmview_clone_extend(struct mm_struct *dst,
				struct vm_area_struct *vma, unsigned long s,
				unsigned long e)
{
	pgoff_t pgoff = vma->vm_pgoff + ((s - vma->vm_start) >> PAGE_SHIFT);
	struct vma_iterator vmi;

	VMG_STATE(vmg, dst, &vmi, s, e, vma->vm_flags, pgoff);

	if (vma->vm_ops && vma->vm_ops->open)
		return false;
	vma_iter_init(&vmi, dst, s);
	/* The iterator is left at prev, as VMG_FLAG_JUST_EXPAND wants. */
	vmg.prev = vma_prev(&vmi);
	if (!vmg.prev || vmg.prev->vm_end != s)
		return false;
	vmg.file = vma->vm_file;
	vmg.anon_vma = vma->anon_vma;
	vmg.policy = vma_policy(vma);
	vmg.uffd_ctx = vma->vm_userfaultfd_ctx;
	vmg.anon_name = anon_vma_name(vma);
	vmg.merge_flags = VMG_FLAG_JUST_EXPAND;
	return vma_merge_new_range(&vmg);
}

/**
 * mmview_clone_range - give @dst the mappings of @src over [@start, @end)
 * @dst: a member
 * @src: the member that mapped the range
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Replaces whatever @dst maps there by clones of @src's mappings, clipped
 * to the range: same file (referenced again, ->open() called; a
 * MAP_SHARED anonymous mapping stays one shmem object), flags, pgoff and
 * anon_vma; no page is copied (they fill from the base, or from the file).
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0, or a negative errno with @dst's range partly mapped.
 */
int mmview_clone_range(struct mm_struct *dst, struct mm_struct *src,
		       unsigned long start, unsigned long end)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma, *tmp;
	unsigned long s, e, charge;
	int err;

	vma_iter_init(&vmi, src, start);
	err = mmview_try_munmap_one(dst, start, end);
	if (err)
		return err;
	for_each_vma_range(vmi, vma, end) {
		s = max(start, vma->vm_start);
		e = min(end, vma->vm_end);
		/*
		 * Every member's clone of a private mapping must share one
		 * anon_vma (see mmview_family_create_locked()): give @src's
		 * its own now if it has none yet (a new brk() or mmap()
		 * mapping), or the first fault would give each its own.
		 */
		if (!(vma->vm_flags & (VM_MAYSHARE | VM_PFNMAP | VM_MIXEDMAP |
				       VM_HUGETLB)) && anon_vma_prepare(vma))
			return -ENOMEM;
		charge = 0;
		if (vma->vm_flags & VM_ACCOUNT) {
			if (security_vm_enough_memory_mm(dst, (e - s) >> PAGE_SHIFT))
				return -ENOMEM;
			charge = (e - s) >> PAGE_SHIFT;
		}
		if (mmview_clone_extend(dst, vma, s, e)) {
			vm_stat_account(dst, vma->vm_flags, (e - s) >> PAGE_SHIFT);
			if (vma->vm_flags & VM_LOCKED)
				dst->locked_vm += (e - s) >> PAGE_SHIFT;
			continue;
		}
		err = -ENOMEM;
		/* vm.max_map_count holds in every member, as mmap() checks it. */
		if (dst->map_count >= sysctl_max_map_count)
			goto unacct;
		tmp = vm_area_dup(vma);
		if (!tmp)
			goto unacct;
		tmp->vm_start = s;
		tmp->vm_end = e;
		tmp->vm_pgoff = vma->vm_pgoff + ((s - vma->vm_start) >> PAGE_SHIFT);
		tmp->vm_mm = dst;
		if (vma_dup_policy(vma, tmp))
			goto free;
		if (tmp->anon_vma && anon_vma_clone(tmp, vma))
			goto policy;
		if (is_vm_hugetlb_page(tmp))
			hugetlb_dup_vma_private(tmp);
		if (tmp->vm_file)
			get_file(tmp->vm_file);
		if (vma_link(dst, tmp)) {
			if (tmp->vm_file)
				fput(tmp->vm_file);
			unlink_anon_vmas(tmp);
			goto policy;
		}
		vm_stat_account(dst, tmp->vm_flags, vma_pages(tmp));
		/* As mmap_region() charges it: munmap() uncharges it. */
		if (tmp->vm_flags & VM_LOCKED)
			dst->locked_vm += vma_pages(tmp);
		if (tmp->vm_ops && tmp->vm_ops->open)
			tmp->vm_ops->open(tmp);
		if (!mmview_flags_synced(tmp->vm_flags) &&
		    (tmp->vm_flags & (VM_PFNMAP | VM_MIXEDMAP))) {
			err = copy_page_range(tmp, vma);
			if (err)
				return err;
		}
	}
	return 0;

policy:
	mpol_put(vma_policy(tmp));
free:
	vm_area_free(tmp);
unacct:
	vm_unacct_memory(charge);
	return err;
}

/**
 * mmview_replicate_munmap - munmap(): after @mm unmapped a range, unmap it
 * in every other member
 * @mm: the calling thread's mm, in a family
 * @start: the start of the range
 * @len: its length
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0, or -ENOMEM if a member could not be split (its pages in the
 * range are gone then, see mmview_munmap_one()).
 */
int mmview_replicate_munmap(struct mm_struct *mm, unsigned long start,
			    size_t len)
{
	mmap_assert_write_locked(mm);
	return mmview_rs_replicate(mm, MMVIEW_REPLICATE_MUNMAP, start,
				   start + PAGE_ALIGN(len));
}

/**
 * mmview_replicate_mmap - mmap_region(): @mm mapped [@addr, @addr + @len);
 * map it in every other member
 * @mm: the calling thread's mm, in a family
 * @addr: the address of the new mapping
 * @len: its length
 * @ret: what mmap_region() returns on success (@addr)
 *
 * Private mappings get their anon_vma now, shared by all members (see
 * mmview_family_create_locked()). If a member cannot take the mapping, the
 * range is unmapped everywhere and the mmap() fails.
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: @ret, or a negative errno.
 */
unsigned long mmview_replicate_mmap(struct mm_struct *mm, unsigned long addr,
				    unsigned long len, unsigned long ret)
{
	unsigned long end = addr + PAGE_ALIGN(len);
	struct vma_iterator vmi;
	struct vm_area_struct *vma;
	int err = 0;

	vma_iter_init(&vmi, mm, addr);
	mmap_assert_write_locked(mm);
	/* x86 may have allocated its execute-only key for a PROT_EXEC map. */
	mmview_sync_pkeys(mm);
	for_each_vma_range(vmi, vma, end) {
		if (!(vma->vm_flags & (VM_MAYSHARE | VM_PFNMAP | VM_MIXEDMAP |
				       VM_HUGETLB)) && anon_vma_prepare(vma)) {
			err = -ENOMEM;
			break;
		}
	}
	if (!err)
		err = mmview_rs_replicate(mm, MMVIEW_REPLICATE_CLONE, addr, end);
	if (!err)
		return ret;
	mmview_munmap_one(mm, addr, end);
	mmview_rs_replicate(mm, MMVIEW_REPLICATE_MUNMAP, addr, end);
	return err;
}

/**
 * mmview_replicate_mremap - mremap() moved a mapping of @mm: move it in
 * every other member
 * @mm: the calling thread's mm, in a family
 * @m: the move
 *
 * Each member moves its own page tables (the base's hold the data of the
 * shared private mappings, every member's hold its unshared data), one
 * mapping at a time (mmview_mremap_one() in mm/mremap.c). With
 * MREMAP_DONTUNMAP, the emptied old range then gets one anon_vma for all
 * members again, as a new mapping does (move_vma() unlinks it).
 *
 * If a member cannot move, or the old range cannot be shared again, every
 * other member is moved back and the error returned: the caller then moves
 * its own mapping back (mmview_mremap_undo_one()).
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno.
 */
int mmview_replicate_mremap(struct mm_struct *mm,
			    const struct mmview_mremap *m)
{
	unsigned long ret;
	int err;

	mmap_assert_write_locked(mm);
	err = mmview_rs_replicate_mremap(mm, m, false);
	if (err || !(m->flags & MREMAP_DONTUNMAP))
		return err;
	ret = mmview_replicate_mmap(mm, m->addr, m->old_len, 0);
	if (!IS_ERR_VALUE(ret))
		return 0;
	mmview_rs_replicate_mremap(mm, m, true);
	return (int)ret;
}

/*
 * The flags mprotect() and pkey_mprotect() set: access, protection key, the
 * arch's (arm64: BTI), and arm64's PROT_MTE (which mprotect() never clears,
 * so a member without it has never had it).
 */
#define MMVIEW_PROT_FLAGS (VM_ACCESS_FLAGS | VM_FLAGS_CLEAR | VM_MTE)

/*
 * Give the mappings of @mm in [@start, @end) the protection flags @access
 * (MMVIEW_PROT_FLAGS), as mprotect() would (holes skipped).
 *
 * Locks: the family's mmap_lock held for writing.
 */
static int mmview_protect_range(struct mm_struct *mm, struct mmu_gather *tlb,
				unsigned long start, unsigned long end,
				vm_flags_t access)
{
	struct vm_area_struct *vma, *prev;
	struct vma_iterator vmi;
	unsigned long nstart = start;
	int err;

	vma_iter_init(&vmi, mm, start);
	vma = vma_find(&vmi, end);
	if (!vma)
		return 0;
	prev = vma_prev(&vmi);
	if (start > vma->vm_start)
		prev = vma;
	for_each_vma_range(vmi, vma, end) {
		vm_flags_t newflags = (vma->vm_flags & ~MMVIEW_PROT_FLAGS) | access;

		nstart = max(nstart, vma->vm_start);
		err = mprotect_fixup(&vmi, tlb, vma, &prev, nstart,
				     min(vma->vm_end, end), newflags);
		if (err)
			return err;
		nstart = vma_iter_end(&vmi);
	}
	return 0;
}

/**
 * mmview_protect_one - give one member the protection @src has over
 * [@start, @end)
 * @dst: the member
 * @src: the member whose mprotect() changed the range
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno (the range partly changed, as a failed
 * mprotect() leaves it).
 */
int mmview_protect_one(struct mm_struct *dst, struct mm_struct *src,
		       unsigned long start, unsigned long end)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma;
	struct mmu_gather tlb;
	int err = 0;

	vma_iter_init(&vmi, src, start);
	mmap_assert_write_locked(dst);
	tlb_gather_mmu(&tlb, dst);
	for_each_vma_range(vmi, vma, end) {
		err = mmview_protect_range(dst, &tlb, max(start, vma->vm_start),
					   min(end, vma->vm_end),
					   vma->vm_flags & MMVIEW_PROT_FLAGS);
		if (err)
			break;
	}
	tlb_finish_mmu(&tlb);
	return err;
}

/*
 * Give the mappings of @mm in [@start, @end) the attribute flags @flags
 * (MMVIEW_ATTR_FLAGS), as madvise() and mseal() would (holes skipped).
 *
 * Locks: the family's mmap_lock held for writing.
 */
static int mmview_attr_range(struct mm_struct *mm, unsigned long start,
			     unsigned long end, vm_flags_t flags)
{
	struct vm_area_struct *vma, *prev;
	struct vma_iterator vmi;
	unsigned long nstart = start;
	vm_flags_t newflags;

	vma_iter_init(&vmi, mm, start);
	vma = vma_find(&vmi, end);
	if (!vma)
		return 0;
	prev = vma_prev(&vmi);
	if (start > vma->vm_start)
		prev = vma;
	for_each_vma_range(vmi, vma, end) {
		nstart = max(nstart, vma->vm_start);
		newflags = (vma->vm_flags & ~MMVIEW_ATTR_FLAGS) | flags;
		if (newflags != vma->vm_flags) {
			vma = vma_modify_flags(&vmi, prev, vma, nstart,
					       min(vma->vm_end, end), newflags);
			if (IS_ERR(vma))
				return PTR_ERR(vma);
			vma_start_write(vma);
			vm_flags_reset(vma, newflags);
		}
		prev = vma;
		nstart = vma->vm_end;
	}
	return 0;
}

/**
 * mmview_attr_one - give one member the attribute flags @src has over
 * [@start, @end)
 * @dst: the member
 * @src: the member whose madvise() or mseal() changed the range
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * The attributes are MMVIEW_ATTR_FLAGS: fork and core-dump advice,
 * read-ahead advice, THP advice, and the seal.
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno (the range partly changed, as a failed
 * madvise() leaves it).
 */
int mmview_attr_one(struct mm_struct *dst, struct mm_struct *src,
		    unsigned long start, unsigned long end)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma;
	int err;

	vma_iter_init(&vmi, src, start);
	mmap_assert_write_locked(dst);
	for_each_vma_range(vmi, vma, end) {
		err = mmview_attr_range(dst, max(start, vma->vm_start),
					min(end, vma->vm_end),
					vma->vm_flags & MMVIEW_ATTR_FLAGS);
		if (err)
			return err;
	}
	return 0;
}

/**
 * mmview_replicate_attr - madvise() or mseal() changed the attribute flags
 * of @mm's mappings in [@start, @end): change them in every other member
 * @mm: the calling thread's mm, in a family
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Sealing in particular must hold in every view, or an munmap() from an
 * unsealed view would unmap the range everywhere but in the sealed one.
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno.
 */
int mmview_replicate_attr(struct mm_struct *mm, unsigned long start,
			  unsigned long end)
{
	mmap_assert_write_locked(mm);
	return mmview_rs_replicate(mm, MMVIEW_REPLICATE_ATTR, start, end);
}

/**
 * mmview_replicate_mlock - mlock(), munlock(), mlockall() or munlockall()
 * changed the mlock flags of @mm's mappings in [@start, @end): change them
 * in every other member (mmview_mlock_one() in mm/mlock.c)
 * @mm: the calling thread's mm, in a family
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno.
 */
int mmview_replicate_mlock(struct mm_struct *mm, unsigned long start,
			   unsigned long end)
{
	mmap_assert_write_locked(mm);
	return mmview_rs_replicate(mm, MMVIEW_REPLICATE_MLOCK, start, end);
}

/**
 * mmview_replicate_mprotect - mprotect(): after @mm changed a shared range,
 * change it in every other member
 * @mm: the calling thread's mm, in a family
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * An unshared range changes in the calling thread's view only (a range
 * mixing both was refused, mmview_mprotect_check()).
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0 or a negative errno.
 */
int mmview_replicate_mprotect(struct mm_struct *mm, unsigned long start,
			      unsigned long end)
{
	struct vm_area_struct *vma = find_vma_intersection(mm, start, end);

	mmap_assert_write_locked(mm);
	/* x86 may have allocated its execute-only key. */
	mmview_sync_pkeys(mm);
	if (!vma || (vma->vm_flags & VM_MMVIEW_UNSHARED))
		return 0;
	return mmview_rs_replicate(mm, MMVIEW_REPLICATE_PROTECT, start, end);
}

/**
 * mmview_zap_one - madvise(MADV_DONTNEED) of one member's shared range
 * @mm: the member
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * Locks: the family's mmap_lock held (for reading is enough).
 *
 * Return: 0.
 */
int mmview_zap_one(struct mm_struct *mm, unsigned long start,
		   unsigned long end)
{
	/*
	 * Locked mappings too: the caller's advice was checked on its own
	 * mapping (MADV_DONTNEED_LOCKED may drop locked pages), and every
	 * member has the same mlock flags (mmview_mlock_one()).
	 */
	mmview_zap_range(mm, start, end, VM_MMVIEW_UNSHARED | VM_PFNMAP |
			 VM_HUGETLB);
	return 0;
}

/**
 * mmview_replicate_dontneed - madvise(MADV_DONTNEED, MADV_FREE) of a
 * shared range: drop it in every other member first
 * @mm: the calling thread's mm, in a family
 * @start: page-aligned start
 * @end: page-aligned end
 *
 * The caller then drops its own pages, so no member keeps the old data.
 *
 * Locks: the family's mmap_lock held for reading.
 */
void mmview_replicate_dontneed(struct mm_struct *mm, unsigned long start,
			       unsigned long end)
{
	mmview_rs_replicate(mm, MMVIEW_REPLICATE_ZAP, start, end);
}

/**
 * mmview_expand_one - grow one member's stack down to @start
 * @mm: the member
 * @start: the new start of the stack
 * @end: the end of the stack mapping
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0, or the error of expand_downwards() (the member's stack then
 * stays smaller: a view's access there faults SIGSEGV).
 */
int mmview_expand_one(struct mm_struct *mm, unsigned long start,
		      unsigned long end)
{
	struct vm_area_struct *vma = vma_lookup(mm, end - 1);

	mmap_assert_write_locked(mm);
	if (!vma || !(vma->vm_flags & VM_GROWSDOWN) || vma->vm_start <= start)
		return 0;
	return expand_downwards(vma, start);
}

/**
 * mmview_replicate_expand - a stack of @mm grew to [@start, @end): grow it
 * in every other member
 * @mm: the calling thread's mm, in a family
 * @start: the stack's new start
 * @end: its end
 *
 * Locks: the family's mmap_lock held for writing.
 */
void mmview_replicate_expand(struct mm_struct *mm, unsigned long start,
			     unsigned long end)
{
	mmview_rs_replicate(mm, MMVIEW_REPLICATE_EXPAND, start, end);
}

/**
 * mmview_brk_one - give one member @src's program break
 * @dst: the member
 * @src: the member whose brk() moved it
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0.
 */
int mmview_brk_one(struct mm_struct *dst, struct mm_struct *src)
{
	mmap_assert_write_locked(dst);
	dst->brk = src->brk;
	dst->start_brk = src->start_brk;
	return 0;
}

/**
 * mmview_replicate_brk - brk() of @mm moved the break over [@start, @end):
 * every other member gets the new mappings (@grow) or loses them, and the
 * new break
 * @mm: the calling thread's mm, in a family
 * @start: page-aligned start of the change
 * @end: page-aligned end
 * @grow: whether the heap grew
 *
 * Locks: the family's mmap_lock held for writing.
 *
 * Return: 0, or a negative errno if a member cannot take the new mappings
 * (the caller then undoes the growth).
 */
int mmview_replicate_brk(struct mm_struct *mm, unsigned long start,
			 unsigned long end, bool grow)
{
	int err = 0;

	/* A move within a page (sbrk() of a few bytes): only the break. */
	if (start < end)
		err = mmview_rs_replicate(mm, grow ? MMVIEW_REPLICATE_CLONE :
					  MMVIEW_REPLICATE_MUNMAP, start, end);
	if (err && grow) {
		mmview_rs_replicate(mm, MMVIEW_REPLICATE_MUNMAP, start, end);
		return err;
	}
	mmview_rs_replicate(mm, MMVIEW_REPLICATE_BRK, start, end);
	return err;
}

/* ------------------------------------------------------------------------
 * The per-page count of view mappings: how many PTEs of family members
 * other than the base map an anonymous page. Kept in page_ext (struct page
 * does not grow), updated where the page table check hooks PTE changes
 * (set_ptes(), ptep_get_and_clear() and friends, see page_table_check.h),
 * behind a static key that the first MMVIEW_CREATE turns on. The base uses
 * it to decide whether a write may reuse a page (wp_can_reuse_anon_folio()).
 */

DEFINE_STATIC_KEY_FALSE(mmview_count_key);

static bool __init mmview_count_need(void)
{
	return true;
}

struct page_ext_operations page_mmview_ops = {
	.size = sizeof(atomic_t),
	.need = mmview_count_need,
};

static atomic_t *mmview_count_of(struct page_ext *ext)
{
	return page_ext_data(ext, &page_mmview_ops);
}

/* Adds @delta to the counts of @nr pages from @pfn, if they are anonymous. */
static void mmview_count_pfns(unsigned long pfn, unsigned int nr, int delta)
{
	struct page_ext *ext;
	struct page *page;
	unsigned int i;

	if (!pfn_valid(pfn) || is_zero_pfn(pfn))
		return;
	page = pfn_to_page(pfn);
	if (!PageAnon(page))
		return;
	ext = page_ext_get(page);
	if (!ext)
		return;
	for (i = 0; i < nr; i++) {
		atomic_add(delta, mmview_count_of(ext));
		ext = page_ext_next(ext);
	}
	page_ext_put(ext);
}

/* Whether @mm's mappings are counted: a family member, not the base. */
static bool mmview_counted(struct mm_struct *mm)
{
	struct mmview_family *fam = mmview_family(mm);

	return fam && mm != fam->base;
}

/* set_ptes(): @nr PTEs from @ptep become @pte... Locks: their PTL. */
void __mmview_count_ptes_set(struct mm_struct *mm, pte_t *ptep, pte_t pte,
			     unsigned int nr)
{
	unsigned int i;

	if (!mmview_counted(mm))
		return;
	for (i = 0; i < nr; i++) {
		pte_t old = ptep_get(ptep + i);

		if (pte_present(old))
			mmview_count_pfns(pte_pfn(old), 1, -1);
	}
	if (pte_present(pte))
		mmview_count_pfns(pte_pfn(pte), nr, 1);
}

/* ptep_get_and_clear() and friends: @pte was removed. Locks: its PTL. */
void __mmview_count_pte_clear(struct mm_struct *mm, pte_t pte)
{
	if (mmview_counted(mm) && pte_present(pte))
		mmview_count_pfns(pte_pfn(pte), 1, -1);
}

/* A page is freed: no view can map it. */
void __mmview_count_free(struct page *page, unsigned int order)
{
	struct page_ext *ext = page_ext_get(page);
	unsigned int i;

	if (!ext)
		return;
	for (i = 0; i < (1U << order); i++) {
		atomic_t *count = mmview_count_of(ext);

		if (atomic_read(count)) {
			VM_WARN_ON_ONCE_PAGE(1, page + i);
			atomic_set(count, 0);
		}
		ext = page_ext_next(ext);
	}
	page_ext_put(ext);
}

/**
 * mmview_count_enable - start counting view mappings (first CREATE)
 *
 * Locks: none; may sleep.
 */
void mmview_count_enable(void)
{
	if (!static_key_enabled(&mmview_count_key))
		static_branch_enable(&mmview_count_key);
}

/**
 * mmview_view_mappings - how many view PTEs map @folio
 * @folio: a small anonymous folio mapped by the base at @addr
 * @vma: the base's mapping (mmview_vma_is_master())
 * @addr: the address
 *
 * With CONFIG_DEBUG_VM, checks the count against the members' PTEs at
 * @addr: it may exceed them (a view mapping the page elsewhere, a view
 * unmapping it meanwhile) but never fall short, or the base could reuse a
 * page that someone else still maps.
 *
 * Locks: the family's mmap_lock and the base's PTL for @addr.
 *
 * Return: the count.
 */
int mmview_view_mappings(struct folio *folio, struct vm_area_struct *vma,
			 unsigned long addr)
{
	struct page_ext *ext = page_ext_get(&folio->page);
	int count = 0;

	if (ext) {
		count = atomic_read(mmview_count_of(ext));
		page_ext_put(ext);
	}
#ifdef CONFIG_DEBUG_VM
	{
		struct mmview_family *fam = mmview_family(vma->vm_mm);
		struct mm_struct *sib;
		int seen = 0;

		list_for_each_entry(sib, &fam->mms, mmview_node) {
			pmd_t *pmd;
			pte_t *pte;

			if (sib == vma->vm_mm)
				continue;
			pmd = mm_find_pmd(sib, addr);
			if (!pmd)
				continue;
			pte = pte_offset_map(pmd, addr);
			if (!pte)
				continue;
			if (pte_present(ptep_get(pte)) &&
			    pte_pfn(ptep_get(pte)) == folio_pfn(folio))
				seen++;
			pte_unmap(pte);
		}
		VM_WARN_ON_ONCE_FOLIO(seen > count, folio);
	}
#endif
	return count;
}

/* ------------------------------------------------------------------------
 * MMVIEW_SWITCH_BASE: another member becomes the master copy.
 */

struct mmview_rebalance {
	int delta;
};

/* Re-counts the anonymous pages mapped by one page table of a member. */
static int mmview_rebalance_pte(pte_t *pte, unsigned long addr,
				unsigned long next, struct mm_walk *walk)
{
	struct mmview_rebalance *rb = walk->private;
	pte_t entry = ptep_get(pte);

	if (pte_present(entry))
		mmview_count_pfns(pte_pfn(entry), 1, rb->delta);
	return 0;
}

static const struct mm_walk_ops mmview_rebalance_ops = {
	.pte_entry	= mmview_rebalance_pte,
	.walk_lock	= PGWALK_RDLOCK,
};

/*
 * Pass 1: make every entry of @old's shared private mappings either none or
 * present, faulting in what reclaim or migration took away. -EAGAIN if it
 * keeps changing.
 */
static int mmview_fault_in_base(struct mm_struct *old)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma;

	vma_iter_init(&vmi, old, 0);
	for_each_vma(vmi, vma) {
		unsigned long addr;

		if (!mmview_flags_synced(vma->vm_flags))
			continue;
		for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
			int tries = 0;

			for (;;) {
				spinlock_t *ptl;	/* the base's PTL for addr */
				pmd_t *pmd;
				pte_t *pte, entry;
				vm_fault_t ret;

				pmd = mm_find_pmd(old, addr);
				if (!pmd || pmd_none(pmdp_get_lockless(pmd)))
					break;
				pte = pte_offset_map_lock(old, pmd, addr, &ptl);
				if (!pte)
					break;
				entry = ptep_get(pte);
				pte_unmap_unlock(pte, ptl);
				if (pte_none(entry) || pte_present(entry))
					break;
				if (++tries > 8)
					return -EAGAIN;
				ret = handle_mm_fault(vma, addr, FAULT_FLAG_REMOTE,
						      NULL);
				if (ret & VM_FAULT_ERROR)
					return vm_fault_to_errno(ret, 0) ?: -EFAULT;
			}
			cond_resched();
		}
	}
	return 0;
}

/*
 * Pass 2: copy @old's present PTEs of shared private mappings into @new
 * wherever @new lacks them. Locks: the family's mmap_lock for writing and
 * mm_take_all_locks(), so no PTE of either changes meanwhile.
 */
static int mmview_copy_from_base(struct mm_struct *new, struct mm_struct *old)
{
	struct vma_iterator vmi;
	struct vm_area_struct *vma;

	vma_iter_init(&vmi, old, 0);
	for_each_vma(vmi, vma) {
		struct vm_area_struct *nvma;
		unsigned long addr;

		if (!mmview_flags_synced(vma->vm_flags))
			continue;
		for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
			spinlock_t *ptl, *nptl;
			pmd_t *pmd, *npmd;
			pte_t *pte, *npte, entry, nentry;

			pmd = mm_find_pmd(old, addr);
			if (!pmd || pmd_none(pmdp_get_lockless(pmd))) {
				addr = (addr & PMD_MASK) + PMD_SIZE - PAGE_SIZE;
				continue;
			}
			nvma = vma_lookup(new, addr);
			if (!nvma || nvma->anon_vma != vma->anon_vma)
				return -EINVAL;
			npmd = mmview_pmd_alloc(new, addr);
			if (!npmd || pte_alloc(new, npmd))
				return -ENOMEM;
			pte = pte_offset_map_lock(old, pmd, addr, &ptl);
			if (!pte)
				continue;
			npte = pte_offset_map_nolock(new, npmd, addr, &nptl);
			if (!npte) {
				pte_unmap_unlock(pte, ptl);
				return -EAGAIN;
			}
			spin_lock_nested(nptl, SINGLE_DEPTH_NESTING);
			entry = ptep_get(pte);
			nentry = ptep_get(npte);
			if (!pte_none(entry) && !pte_present(entry)) {
				spin_unlock(nptl);
				pte_unmap(npte);
				pte_unmap_unlock(pte, ptl);
				return -EAGAIN;
			}
			if (pte_present(nentry) && pte_present(entry) &&
			    pte_pfn(nentry) == pte_pfn(entry))
				goto next;
			if (!pte_none(nentry))
				mmview_clear_pte_locked(nvma, addr, npte, nentry);
			if (!pte_none(entry))
				mmview_copy_pte_locked(vma, nvma, addr, npte,
						       entry);
next:
			spin_unlock(nptl);
			pte_unmap(npte);
			pte_unmap_unlock(pte, ptl);
		}
		cond_resched();
	}
	return 0;
}

/**
 * mmview_switch_base_locked - make @new the base of its family
 * @new: the calling thread's mm, a member other than the base
 *
 * @new gets every page of the base's shared private mappings that it does
 * not map yet (swapped-out pages are read back first), the per-page count
 * of view mappings moves from @new's mappings to the old base's, and the
 * faults of the old base are served from @new from now on. The lock owner
 * does not change.
 *
 * Locks: the family's mmap_lock held for writing; takes all of @new's
 * rmap locks (mm_take_all_locks()) while the base changes, so that no
 * reclaim or migration changes a PTE meanwhile.
 *
 * Return: 0, -ENOMEM, -EINTR (a fatal signal), or -EAGAIN if the base's
 * pages kept changing; nothing changes on failure but for pages read back.
 */
int mmview_switch_base_locked(struct mm_struct *new)
{
	struct mmview_family *fam = mmview_family(new);
	struct mm_struct *old = fam->base;
	struct mmview_rebalance rb;
	int err, tries;

	mmap_assert_write_locked(new);
	if (new == old)
		return 0;
	for (tries = 0; tries < 4; tries++) {
		err = mmview_fault_in_base(old);
		if (err)
			return err;
		err = mm_take_all_locks(new);
		if (err)
			return err;
		err = mmview_copy_from_base(new, old);
		if (!err) {
			rb.delta = -1;
			walk_page_range(new, 0, TASK_SIZE, &mmview_rebalance_ops, &rb);
			rb.delta = 1;
			walk_page_range(old, 0, TASK_SIZE, &mmview_rebalance_ops, &rb);
			mmgrab(new);
			WRITE_ONCE(fam->base, new);
			mm_drop_all_locks(new);
			mmdrop(old);
			return 0;
		}
		mm_drop_all_locks(new);
		if (err != -EAGAIN)
			return err;
	}
	return err;
}
