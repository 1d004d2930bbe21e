// SPDX-License-Identifier: GPL-2.0

#include <linux/mmap_lock.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>

struct mm_struct *rust_helper_current_mm(void)
{
	return current->mm;
}

int rust_helper_mmap_write_lock_killable(struct mm_struct *mm)
{
	return mmap_write_lock_killable(mm);
}

void rust_helper_mmap_write_unlock(struct mm_struct *mm)
{
	mmap_write_unlock(mm);
}

unsigned long rust_helper_task_size(void)
{
	return TASK_SIZE;
}
