/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmview: several address spaces ("views") in one process.
 *
 * The policy (syscall dispatch, argument checks, the view registry, the
 * lifecycle decisions) is in Rust, in mm/mmview_rs/. The mechanisms that
 * run under page-table locks or in mm-internal code are the mmview_*
 * functions in mm/mmview.c, mm/memory.c and kernel/fork.c.
 *
 * Terms:
 * - family: the mm_structs of one process's views. Its first member, the
 *   lock owner, is the process's original mm: its mmap_lock serialises
 *   every member (see mmap_lock_mm()).
 * - base: the member that is the master copy of the private mappings of
 *   shared ranges; other members map the base's pages on demand (a view
 *   fault copies the base's PTE) and never replace them.
 * - shared/unshared: a mapping without/with VM_MMVIEW_UNSHARED. Unshared
 *   private mappings are copy-on-write between members, like after fork().
 *
 * The invariant of shared memory: a view's PTE in a shared private mapping
 * maps exactly the page the base maps there now, with no more permission
 * than the view's own mapping allows, or nothing. A view only ever copies
 * the base's PTE under the base's PTL (mmview_sync_pte()), and every place
 * where the base's PTE stops mapping a page removes the views' copies
 * before that PTL is dropped: copy-on-write (wp_page_copy()), zaps made
 * under the mmap_lock (zap_pte_range(): MADV_DONTNEED, munmap(), exit, the
 * OOM reaper), reclaim and migration (try_to_unmap_one() and
 * try_to_migrate_one() drop a view's copy instead of making it a swap or
 * migration entry). unmap_mapping_range() (truncation, hole punching) holds
 * no mmap_lock and reaches every member's mapping through the file's i_mmap
 * tree itself. mremap() moves each member's page tables under the mmap_lock
 * held for writing, when no view can fault.
 */
#ifndef _LINUX_MMVIEW_H
#define _LINUX_MMVIEW_H

#include <linux/list.h>
#include <linux/mm.h>
#include <linux/refcount.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <uapi/linux/mmview.h>

struct seq_file;
struct signal_struct;
struct task_struct;
struct vm_area_struct;

/* The default and the highest value of the vm.mmview_max_views sysctl. */
#define MMVIEW_DEFAULT_MAX_VIEWS	1024
#define MMVIEW_MAX_VIEWS_LIMIT		65536

/**
 * struct mmview_family - the views of one process
 * @owner: the process's original mm, whose mmap_lock is the family's lock;
 *	fixed for the family's life, pinned with mmgrab()
 * @base: the member whose private pages the others map; pinned with mmgrab()
 * @signal: the thread group the family belongs to (compared, never
 *	dereferenced): the family is released when its last thread exits or
 *	execs
 * @mms: the members, linked by mm->mmview_node. Changed with the family's
 *	mmap_lock held for writing and @mms_lock held; read with either
 * @mms_lock: see @mms
 * @refs: one per member mm that has not finished __mmput()
 * @registry: the Rust view registry (ids, states); NULL once the family is
 *	released. Used with the family's mmap_lock held.
 */
struct mmview_family {
	struct mm_struct *owner;
	struct mm_struct *base;
	struct signal_struct *signal;
	struct list_head mms;
	spinlock_t mms_lock;	/* see @mms */
	refcount_t refs;
	void *registry;
};

/*
 * A move made by mremap(): [@addr, @addr + @old_len) went to @new_addr,
 * @new_len long (@old_len <= @new_len: a shrink was done before; @old_len
 * 0: a second mapping of a shared object), with MREMAP_* @flags.
 */
struct mmview_mremap {
	unsigned long addr;
	unsigned long old_len;
	unsigned long new_addr;
	unsigned long new_len;
	unsigned long flags;
};

#ifdef CONFIG_MMVIEW
/* The mmview(2) system call, in Rust. Process context, no locks held. */
long mmview_rs_syscall(long op, unsigned long arg1, unsigned long arg2);
/* Rust: a deleted view may have lost its last thread. No locks held. */
void mmview_rs_view_idle(struct mm_struct *mm);
/* Rust: the family's thread group is gone: drop every view. No locks held. */
void mmview_rs_family_release(struct mmview_family *fam);

/* The current value of vm.mmview_max_views. Any context. */
int mmview_max_views(void);

int mmview_designate_locked(struct mm_struct *mm, unsigned long start,
			    unsigned long end, bool unshared);
int mmview_mprotect_check(struct mm_struct *mm, unsigned long start,
			  unsigned long end);

/* Family management (mm/mmview.c), called by the Rust side. */
struct mmview_family *mmview_family_create_locked(struct mm_struct *mm,
						  void *registry);
void mmview_family_destroy_locked(struct mm_struct *mm);
int mmview_family_check_locked(struct mm_struct *mm);
void mmview_add_view_locked(struct mm_struct *view, u64 id);
struct mm_struct *mmview_switch_mm(struct mm_struct *new);
void mmview_task_enter(struct mm_struct *mm);
void mmview_task_leave(struct mm_struct *mm);
void mmview_put_view(struct mm_struct *mm);

/* kernel/fork.c */
struct mm_struct *mmview_dup_mm(struct mm_struct *src, int *err);
void mmview_discard_mm(struct mm_struct *mm);

/* Hooks: each says where it is called and which locks it needs. */
int mmview_clone_vm_check(struct mm_struct *mm, unsigned long clone_flags);
void mmview_task_join(struct mm_struct *mm, unsigned long clone_flags);
void mmview_task_exit(struct mm_struct *mm);
void mmview_mm_unlink(struct mm_struct *mm);
void mmview_mm_put(struct mm_struct *mm);
bool mmview_update_owner(struct mm_struct *mm);
vm_fault_t mmview_sync_pte(struct vm_area_struct *vma, unsigned long addr,
			   unsigned int flags);
bool mmview_dump_from_base(struct vm_area_struct *vma, unsigned long addr);
void mmview_zap_siblings_locked(struct vm_area_struct *vma,
				unsigned long addr);
void mmview_zap_siblings_range_locked(struct vm_area_struct *vma,
				      unsigned long start, unsigned long end);
void mmview_fork_prepare(struct mm_struct *mm);
void mmview_fork_copy_begin(struct mm_struct *mm);
void mmview_fork_copy_end(struct mm_struct *mm);
int mmview_copy_page_range(struct vm_area_struct *dst_vma,
			   struct vm_area_struct *src_vma);

bool mmview_mm_in_use(struct mm_struct *mm);
/* Rust: the MMVIEW_STAT_* state of member @mm. The family's mmap_lock. */
u64 mmview_rs_view_state(struct mm_struct *mm);
void mmview_stat_fill(struct mm_struct *mm, u64 state, struct task_struct *task,
		      struct mmview_stat *st);
int mmview_stat_copy_out(void __user *buf, const struct mmview_stat *st);
int mmview_proc_show(struct seq_file *m, struct mm_struct *mm,
		     struct task_struct *task);
void mmview_sync_flags(struct mm_struct *mm, unsigned long mask);
void mmview_sync_def_flags(struct mm_struct *mm);
void mmview_sync_mm_fields(struct mm_struct *mm);
void mmview_sync_pkeys(struct mm_struct *mm);
struct mm_struct *mmview_futex_mm(struct mm_struct *mm, unsigned long address);
bool __mmview_is_member(struct mm_struct *mm, const struct mm_struct *other);
#ifdef CONFIG_MEMBARRIER
void mmview_membarrier_or(struct mm_struct *mm, int bits);
#endif

void mmview_count_enable(void);
int mmview_switch_base_locked(struct mm_struct *new);
int mmview_view_mappings(struct folio *folio, struct vm_area_struct *vma,
			 unsigned long addr);

/* Layout replication: mm/mmap.c calls these, Rust drives them. */
#define MMVIEW_REPLICATE_MUNMAP	0
#define MMVIEW_REPLICATE_CLONE	1
#define MMVIEW_REPLICATE_PROTECT	2
#define MMVIEW_REPLICATE_ZAP		3
#define MMVIEW_REPLICATE_EXPAND		4
#define MMVIEW_REPLICATE_BRK		5
#define MMVIEW_REPLICATE_ATTR		6
#define MMVIEW_REPLICATE_MLOCK		7
int mmview_rs_replicate(struct mm_struct *mm, int op, unsigned long start,
			unsigned long end);
int mmview_replicate_munmap(struct mm_struct *mm, unsigned long start,
			    size_t len);
unsigned long mmview_replicate_mmap(struct mm_struct *mm, unsigned long addr,
				    unsigned long len, unsigned long ret);
int mmview_replicate_mprotect(struct mm_struct *mm, unsigned long start,
			      unsigned long end);
int mmview_replicate_attr(struct mm_struct *mm, unsigned long start,
			  unsigned long end);
int mmview_replicate_mlock(struct mm_struct *mm, unsigned long start,
			   unsigned long end);
int mmview_replicate_brk(struct mm_struct *mm, unsigned long start,
			 unsigned long end, bool grow);
void mmview_replicate_expand(struct mm_struct *mm, unsigned long start,
			     unsigned long end);
void mmview_replicate_dontneed(struct mm_struct *mm, unsigned long start,
			       unsigned long end);
int mmview_munmap_one(struct mm_struct *mm, unsigned long start,
		      unsigned long end);
int mmview_try_munmap_one(struct mm_struct *mm, unsigned long start,
			  unsigned long end);
int mmview_zap_one(struct mm_struct *mm, unsigned long start,
		   unsigned long end);
void mmview_zap_all_one(struct mm_struct *mm, unsigned long start,
			unsigned long end);
int mmview_expand_one(struct mm_struct *mm, unsigned long start,
		      unsigned long end);
int mmview_brk_one(struct mm_struct *dst, struct mm_struct *src);
int mmview_protect_one(struct mm_struct *dst, struct mm_struct *src,
		       unsigned long start, unsigned long end);
int mmview_attr_one(struct mm_struct *dst, struct mm_struct *src,
		    unsigned long start, unsigned long end);
int mmview_mlock_one(struct mm_struct *dst, struct mm_struct *src,
		     unsigned long start, unsigned long end);
int mmview_clone_range(struct mm_struct *dst, struct mm_struct *src,
		       unsigned long start, unsigned long end);

int mmview_rs_replicate_mremap(struct mm_struct *mm,
			       const struct mmview_mremap *m, bool undo);
int mmview_replicate_mremap(struct mm_struct *mm,
			    const struct mmview_mremap *m);
int mmview_mremap_one(struct mm_struct *mm, struct mm_struct *src,
		      const struct mmview_mremap *m);
void mmview_mremap_undo_one(struct mm_struct *mm,
			    const struct mmview_mremap *m);

/*
 * Whether a member's mapping with @vm_flags fills from the base: private,
 * shared-designated, and neither hugetlb nor a PFN mapping.
 */
#define MMVIEW_NOT_SYNCED (VM_MAYSHARE | VM_MMVIEW_UNSHARED | VM_PFNMAP | \
			   VM_MIXEDMAP | VM_HUGETLB)

/*
 * The flags of a mapping that madvise() and mseal() set and every member
 * keeps the same (mmview_replicate_attr()).
 */
#define MMVIEW_ATTR_FLAGS (VM_DONTCOPY | VM_WIPEONFORK | VM_DONTDUMP | \
			   VM_RAND_READ | VM_SEQ_READ | VM_HUGEPAGE | \
			   VM_NOHUGEPAGE | VM_SEALED)

static inline bool mmview_flags_synced(vm_flags_t vm_flags)
{
	return !(vm_flags & MMVIEW_NOT_SYNCED);
}

/* The family of @mm, or NULL for an mm that never had views. */
static inline struct mmview_family *mmview_family(const struct mm_struct *mm)
{
	return READ_ONCE(mm->mmview_family);
}

/*
 * Whether @other, an mm that may be freed meanwhile (another CPU's task's,
 * read under RCU) and is only compared, is @mm or a member of @mm's family.
 * Locks: none needed; @mm is alive.
 */
static inline bool mmview_mm_same(const struct mm_struct *other,
				  struct mm_struct *mm)
{
	return other == mm ||
	       (unlikely(mmview_family(mm)) && __mmview_is_member(mm, other));
}

/* wp_page_copy() copied a page for @mm (MMVIEW_STAT). Locks: its PTL. */
static inline void mmview_count_cow(struct mm_struct *mm)
{
	if (unlikely(mmview_family(mm)))
		atomic_long_inc(&mm->mmview_cow_faults);
}

/*
 * Whether @a, which may be NULL, and @b are members of one family. Both
 * must be alive (@a: current->mm, say).
 */
static inline bool mmview_same_family(const struct mm_struct *a,
				      const struct mm_struct *b)
{
	struct mmview_family *fam = a ? mmview_family(a) : NULL;

	return fam && fam == mmview_family(b);
}

/*
 * Whether faults on @vma are served from the base: @vma is a private,
 * shared-designated mapping of a family member other than the base.
 * Locks: the mmap_lock (stable vm_flags and family membership).
 */
static inline bool mmview_vma_synced(const struct vm_area_struct *vma)
{
	struct mmview_family *fam = mmview_family(vma->vm_mm);

	return unlikely(fam) && vma->vm_mm != fam->base &&
	       mmview_flags_synced(vma->vm_flags);
}

/*
 * Whether a change of the page that backs @vma at an address must remove
 * the other members' copies of the PTE: @vma is a private, shared-designated
 * mapping of the base of a family. Locks: the mmap_lock.
 */
static inline bool mmview_vma_is_master(const struct vm_area_struct *vma)
{
	struct mmview_family *fam = mmview_family(vma->vm_mm);

	return unlikely(fam) && vma->vm_mm == fam->base &&
	       mmview_flags_synced(vma->vm_flags);
}
#else
static inline int mmview_mprotect_check(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	return 0;
}

static inline struct mmview_family *mmview_family(const struct mm_struct *mm)
{
	return NULL;
}

static inline bool mmview_mm_same(const struct mm_struct *other,
				  struct mm_struct *mm)
{
	return other == mm;
}

static inline bool mmview_same_family(const struct mm_struct *a,
				      const struct mm_struct *b)
{
	return false;
}

static inline void mmview_count_cow(struct mm_struct *mm) { }

#ifdef CONFIG_MEMBARRIER
static inline void mmview_membarrier_or(struct mm_struct *mm, int bits)
{
	atomic_or(bits, &mm->membarrier_state);
}
#endif

static inline bool mmview_vma_synced(const struct vm_area_struct *vma)
{
	return false;
}

static inline bool mmview_vma_is_master(const struct vm_area_struct *vma)
{
	return false;
}

static inline int mmview_clone_vm_check(struct mm_struct *mm,
					unsigned long clone_flags)
{
	return 0;
}

static inline void mmview_task_join(struct mm_struct *mm,
				    unsigned long clone_flags) { }

static inline void mmview_task_exit(struct mm_struct *mm) { }

static inline void mmview_task_leave(struct mm_struct *mm) { }

static inline void mmview_mm_unlink(struct mm_struct *mm) { }

static inline void mmview_mm_put(struct mm_struct *mm) { }

static inline bool mmview_update_owner(struct mm_struct *mm)
{
	return false;
}

static inline vm_fault_t mmview_sync_pte(struct vm_area_struct *vma,
					 unsigned long addr, unsigned int flags)
{
	return 0;
}

static inline void mmview_zap_siblings_locked(struct vm_area_struct *vma,
					      unsigned long addr) { }

static inline bool mmview_dump_from_base(struct vm_area_struct *vma,
					 unsigned long addr)
{
	return false;
}

static inline void mmview_zap_siblings_range_locked(struct vm_area_struct *vma,
						    unsigned long start,
						    unsigned long end) { }

static inline void mmview_fork_prepare(struct mm_struct *mm) { }

static inline void mmview_sync_flags(struct mm_struct *mm,
				     unsigned long mask) { }

static inline void mmview_sync_def_flags(struct mm_struct *mm) { }

static inline void mmview_sync_mm_fields(struct mm_struct *mm) { }

static inline void mmview_sync_pkeys(struct mm_struct *mm) { }

static inline struct mm_struct *mmview_futex_mm(struct mm_struct *mm,
						unsigned long address)
{
	return mm;
}

static inline int mmview_view_mappings(struct folio *folio,
				       struct vm_area_struct *vma,
				       unsigned long addr)
{
	return 0;
}

static inline int mmview_replicate_munmap(struct mm_struct *mm,
					  unsigned long start, size_t len)
{
	return 0;
}

static inline int mmview_replicate_mprotect(struct mm_struct *mm,
					    unsigned long start,
					    unsigned long end)
{
	return 0;
}

static inline int mmview_replicate_attr(struct mm_struct *mm,
					unsigned long start, unsigned long end)
{
	return 0;
}

static inline int mmview_replicate_mlock(struct mm_struct *mm,
					 unsigned long start, unsigned long end)
{
	return 0;
}

static inline int mmview_replicate_mremap(struct mm_struct *mm,
					  const struct mmview_mremap *m)
{
	return 0;
}

static inline void mmview_mremap_undo_one(struct mm_struct *mm,
					  const struct mmview_mremap *m) { }

static inline int mmview_replicate_brk(struct mm_struct *mm,
				       unsigned long start, unsigned long end,
				       bool grow)
{
	return 0;
}

static inline void mmview_replicate_expand(struct mm_struct *mm,
					   unsigned long start,
					   unsigned long end) { }

static inline void mmview_replicate_dontneed(struct mm_struct *mm,
					     unsigned long start,
					     unsigned long end) { }

static inline unsigned long mmview_replicate_mmap(struct mm_struct *mm,
						  unsigned long addr,
						  unsigned long len,
						  unsigned long ret)
{
	return ret;
}

static inline int mmview_copy_page_range(struct vm_area_struct *dst_vma,
					 struct vm_area_struct *src_vma)
{
	return copy_page_range(dst_vma, src_vma);
}
#endif

#endif /* _LINUX_MMVIEW_H */
