/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmview: several address spaces ("views") in one process.
 *
 * The policy (syscall dispatch, argument checks, the view registry) is in
 * Rust, in mm/mmview_rs/. This header declares what C calls into it.
 */
#ifndef _LINUX_MMVIEW_H
#define _LINUX_MMVIEW_H

#include <uapi/linux/mmview.h>

#ifdef CONFIG_MMVIEW
/* The mmview(2) system call, in Rust. Process context, no locks held. */
long mmview_rs_syscall(long op, unsigned long arg1, unsigned long arg2);
#endif

#endif /* _LINUX_MMVIEW_H */
