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

/* The id of the view every process starts with. */
#define MMVIEW_BASE_ID		0

#endif /* _UAPI_LINUX_MMVIEW_H */
