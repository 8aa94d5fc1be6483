/* SPDX-License-Identifier: MIT */
/* ovc/dedup.h: content-based page sharing (zero pages, duplicates) with share groups. */
#ifndef OVC_DEDUP_H
#define OVC_DEDUP_H

#include <stdbool.h>
#include <stdint.h>

#include <ovc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovc_host;
struct ovc_vm;

/** Longest share-group name, without its terminating NUL. */
#define OVC_DEDUP_GROUP_MAX 63

/**
 * struct ovc_dedup_config - the host's page-sharing scanner
 * @cpu_permille: CPU the scanner thread may use, in thousandths of one core
 *	(measured on its own thread CPU clock; 20: 2% of a core), 1 to 1000
 * @batch: pages read and hashed per step between budget checks (64)
 * @vma_budget: kernel VMAs sharing may add over all VMs; at the budget
 *	sharing stops (zero pages are still reclaimed). 0: a quarter of
 *	vm.max_map_count as found at start
 * @max_map_count: when nonzero and larger than vm.max_map_count, raise the
 *	sysctl to this (if the process may) and restore it when the host goes
 *
 * Fill with ovc_dedup_config_init() first.
 */
struct ovc_dedup_config {
	unsigned int cpu_permille;
	unsigned int batch;
	uint64_t vma_budget;
	uint64_t max_map_count;
};

/**
 * struct ovc_dedup_stats - one VM's page-sharing counters, copied out
 * @enabled: the scanner looks at this VM
 * @scanned: resident pages read and hashed (total)
 * @unstable: pages passed over because they changed since the last pass
 * @zero: pages found all zero and made ZERO (total)
 * @shared: pages made SHARED (total)
 * @sharing: pages SHARED now
 * @saved_bytes: host memory sharing saves for this VM now (each pool page's
 *	cost divided among its sharers)
 * @cow_breaks: shared pages a write took back (copy-on-write)
 * @busy: pages skipped because a transition held them
 * @budget_stops: shares not made because the VMA budget was reached
 * @cpu_ns: scanner CPU time spent on this VM
 * @vmas: kernel VMAs sharing adds to this VM's RAM now
 */
struct ovc_dedup_stats {
	bool enabled;
	uint64_t scanned;
	uint64_t unstable;
	uint64_t zero;
	uint64_t shared;
	uint64_t sharing;
	uint64_t saved_bytes;
	uint64_t cow_breaks;
	uint64_t busy;
	uint64_t budget_stops;
	uint64_t cpu_ns;
	uint64_t vmas;
};

/**
 * ovc_dedup_config_init() - the defaults: 2% of a core, 64-page steps, a quarter of the map limit
 * @cfg: filled in
 */
OVC_EXPORT void ovc_dedup_config_init(struct ovc_dedup_config *cfg);

/**
 * ovc_host_dedup_setup() - create the host's sharing scanner
 * @host: the host
 * @cfg: NULL for the defaults
 * @start_thread: run the background scanner thread; false leaves scanning
 *	to ovc_host_dedup_scan() (tests, VMMs with their own threads)
 *
 * Creates the sharing pool and, with @start_thread, the scanner thread; it
 * lives until ovc_host_destroy(). VMs take part once ovc_vm_set_dedup()
 * turns them on.
 *
 * Return: 0, -EINVAL (bad config), -EEXIST (already set up), or the errno of
 * creating the pool or thread.
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_host_dedup_setup(struct ovc_host *host, const struct ovc_dedup_config *cfg,
				    bool start_thread);

/**
 * ovc_host_dedup_set_cpu_budget() - change the scanner's CPU budget at run time
 * @host: the host, set up with ovc_host_dedup_setup()
 * @permille: thousandths of one core, 1 to 1000
 *
 * Return: 0, -EINVAL, -ENOENT (no scanner). Context: any thread.
 */
OVC_EXPORT int ovc_host_dedup_set_cpu_budget(struct ovc_host *host, unsigned int permille);

/**
 * ovc_host_dedup_scan() - scan now, in the calling thread
 * @host: the host, set up with ovc_host_dedup_setup()
 * @max_pages: resident pages to look at, at most (over all enabled VMs)
 *
 * One step of what the scanner thread does, without the CPU budget: reads
 * and hashes pages, reclaims stable zero pages, shares stable duplicates.
 * A page must look the same on two passes before it is shared.
 *
 * Return: pages looked at, or a negative errno (-ENOENT: no scanner).
 * Context: any thread but a fault-engine thread.
 */
OVC_EXPORT int64_t ovc_host_dedup_scan(struct ovc_host *host, uint64_t max_pages);

/**
 * ovc_vm_set_dedup() - let the scanner share @vm's pages, or stop it
 * @vm: the VM
 * @on: scan it (true) or not
 *
 * Turning it off stops scanning; pages shared so far stay shared until
 * written (use ovc_vm_set_dedup_group() to take them all back).
 *
 * Return: 0, -EINVAL, -ENOENT (ovc_host_dedup_setup() not called), -ENOMEM.
 * Context: any thread; takes the host lock.
 */
OVC_EXPORT int ovc_vm_set_dedup(struct ovc_vm *vm, bool on);

/**
 * ovc_vm_set_dedup_group() - which VMs @vm may share pages with
 * @vm: the VM, dedup on
 * @group: a share-group name (1 to OVC_DEDUP_GROUP_MAX printable
 *	characters), or NULL: the VM shares only with itself (the default)
 *
 * Pages of different groups never map the same pool page; zero pages are
 * reclaimed in every group. Moving a VM takes every page it shares back
 * first (copies), so no page of the old group stays mapped.
 *
 * Return: 0, -EINVAL (bad name), -ENOENT (dedup off for @vm), or the errno
 * of taking a page back (the VM stays in its old group).
 * Context: any thread but a fault-engine thread; may take a while.
 */
OVC_EXPORT int ovc_vm_set_dedup_group(struct ovc_vm *vm, const char *group);

/**
 * ovc_vm_get_dedup_stats() - copy out @vm's sharing counters
 * @vm: the VM
 * @st: filled in (all zero when dedup was never on for @vm)
 *
 * Return: 0 or -EINVAL. Context: any thread; walks the VM's shared pages.
 */
OVC_EXPORT int ovc_vm_get_dedup_stats(struct ovc_vm *vm, struct ovc_dedup_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* OVC_DEDUP_H */
