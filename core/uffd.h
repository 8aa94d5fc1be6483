/* SPDX-License-Identifier: MIT */
/* core/uffd.h: userfaultfd definitions newer than Debian 12's kernel headers. */
#ifndef OVC_CORE_UFFD_H
#define OVC_CORE_UFFD_H

#include <linux/types.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

/* UFFDIO_POISON, Linux 6.6. */
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif

#ifndef UFFD_FEATURE_WP_HUGETLBFS_SHMEM
#define UFFD_FEATURE_WP_HUGETLBFS_SHMEM (1 << 12)
#endif

/* Map write-protected (Linux 6.4; a WP-registered range). */
#define OVC_UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)

/* /dev/userfaultfd, Linux 6.1, for when the syscall is refused. */
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#endif /* OVC_CORE_UFFD_H */
