// SPDX-License-Identifier: GPL-2.0

#include <linux/mmap_lock.h>
#include <linux/mmview.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>

struct mm_struct *rust_helper_current_mm(void)
{
	return current->mm;
}

void rust_helper_mmap_write_lock(struct mm_struct *mm)
{
	mmap_write_lock(mm);
}

int rust_helper_mmap_write_lock_killable(struct mm_struct *mm)
{
	return mmap_write_lock_killable(mm);
}

void rust_helper_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}

int rust_helper_mmap_read_lock_killable(struct mm_struct *mm)
{
	return mmap_read_lock_killable(mm);
}

void rust_helper_mmap_read_unlock(struct mm_struct *mm)
{
	mmap_read_unlock(mm);
}

unsigned long rust_helper_task_size(void)
{
	return TASK_SIZE;
}

#ifdef CONFIG_MMVIEW
struct mmview_family *rust_helper_mmview_family(struct mm_struct *mm)
{
	return mmview_family(mm);
}

u64 rust_helper_mmview_mm_id(struct mm_struct *mm)
{
	return mm->mmview_id;
}

int rust_helper_mmview_mm_tasks(struct mm_struct *mm)
{
	return atomic_read(&mm->mmview_tasks);
}
#endif
