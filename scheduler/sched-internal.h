/* SPDX-License-Identifier: MIT */
/* scheduler/: helpers shared by the CPU enforcement backends (internal API). */
#ifndef OVC_SCHED_INTERNAL_H
#define OVC_SCHED_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ovc/common.h>
#include <ovc/cpusched.h>
#include <ovc/vcpu.h>

/* One line into @why (for a backend that cannot work). */
void ovc__why(char *why, size_t len, const char *fmt, ...) OVC_PRINTF(3, 4);

/* Whether @dir is on a real cgroup (v1 or v2) filesystem, not a look-alike directory. */
bool ovc__cg_is_cgroupfs(const char *dir);

/*
 * Write @fmt into @dir/@file (truncating, or appending with @append: moving
 * threads). On a look-alike directory a missing file is created, as the
 * kernel would have made it. Return 0 or negative errno.
 */
int ovc__cg_write(const char *dir, const char *file, bool append, const char *fmt, ...)
	OVC_PRINTF(4, 5);

/* Read @dir/@file into @buf (NUL-terminated, trailing newline dropped). Return 0 or -errno. */
int ovc__cg_read(const char *dir, const char *file, char *buf, size_t len);

/* Remove a cgroup directory (on a look-alike: its files first). Return 0 or -errno. */
int ovc__cg_rmdir(const char *dir);

/*
 * The cgroup of thread @tid in the hierarchy holding @controller ("cpu",
 * "cpuset"; NULL for the v2 unified one), as a path relative to its root
 * ("/..."). Return 0 or -errno.
 */
int ovc__cg_of_thread(pid_t tid, const char *controller, char *buf, size_t len);

/* "0-3,8" from a -1 terminated list of CPUs. */
void ovc__cpulist(const int *cpus, char *buf, size_t len);

/*
 * Threads a backend moved, with where they came from, so they go back.
 * One per VM, in a small array the backend owns.
 */
struct ovc__moved {
	pid_t tid;
	char from[256];		/* relative cgroup path, or the saved affinity index */
};

struct ovc__cg_vm {
	uint64_t id;
	bool made;		/* the directory exists */
	unsigned int nmoved;
	struct ovc__moved moved[OVC_VM_VCPUS_MAX];
};

/* The entry for @id in *@vms (grown with @create); NULL when absent or on ENOMEM. */
struct ovc__cg_vm *ovc__cg_vm_get(struct ovc__cg_vm ***vms, unsigned int *n, uint64_t id,
				  bool create);

/* Drop and free entry @e of the array. */
void ovc__cg_vm_drop(struct ovc__cg_vm **vms, unsigned int *n, struct ovc__cg_vm *e);

/* Whether @tid is one of @vm's threads. */
bool ovc__tid_in(const struct ovc_cpu_enforce_vm *vm, pid_t tid);

#endif /* OVC_SCHED_INTERNAL_H */
