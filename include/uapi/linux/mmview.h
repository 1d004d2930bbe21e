/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * mmview(2): several address spaces ("views") in one process.
 *
 *	long syscall(__NR_mmview, long op, unsigned long arg1, unsigned long arg2);
 *
 * __NR_mmview is 1000 on x86_64 and arm64. Arguments an operation does not
 * use must be 0, else the call fails with EINVAL.
 */
#ifndef _UAPI_LINUX_MMVIEW_H
#define _UAPI_LINUX_MMVIEW_H

#define MMVIEW_CREATE		0	/* ()          -> id of the new view */
#define MMVIEW_DELETE		1	/* (id)        -> 0 */
#define MMVIEW_CURRENT		2	/* ()          -> id of the caller's view */
#define MMVIEW_MIGRATE		3	/* (id)        -> id of the previous view */
#define MMVIEW_UNSHARE		4	/* (addr, len) -> 0 */
#define MMVIEW_SHARE		5	/* (addr, len) -> 0 */
#define MMVIEW_SWITCH_BASE	6	/* ()          -> id of the new base */
#define MMVIEW_STAT		7	/* (id, struct mmview_stat *) -> 0 */

/* The id of the view every process starts with. */
#define MMVIEW_BASE_ID		0

#include <linux/types.h>

/* mmview_stat.state */
#define MMVIEW_STAT_DELETED	(1ULL << 0)	/* deleted; threads still in it */
#define MMVIEW_STAT_BASE	(1ULL << 1)	/* the base */

/*
 * MMVIEW_STAT(id, buf): figures of view @id. The caller sets @size to the
 * size of the struct it knows (at least MMVIEW_STAT_SIZE_VER0); the kernel
 * fills the fields that fit and leaves @size. A caller's struct larger than
 * the kernel's must have zeros past it (E2BIG otherwise), which stay zero.
 * The byte counts are of pages mapped in the view (resident), by the
 * designation of their mapping. @cow_faults counts from the view's
 * creation, for the base from the process's first MMVIEW_CREATE (0 in a
 * process without views).
 */
struct mmview_stat {
	__u64 size;		/* in: sizeof the caller's struct */
	__u64 state;		/* MMVIEW_STAT_* */
	__u64 threads;		/* threads of the process in the view */
	__u64 shared_bytes;	/* resident memory of shared mappings */
	__u64 unshared_bytes;	/* resident memory of unshared mappings */
	__u64 pgtable_bytes;	/* the view's page tables */
	__u64 cow_faults;	/* copy-on-write faults (base: since CREATE) */
};

#define MMVIEW_STAT_SIZE_VER0	56	/* the first published size */

#endif /* _UAPI_LINUX_MMVIEW_H */
